"""Re-evaluating stored versions: the one path shared by publish, every later write and re-tiering.

Three steps, each written once:

* **inputs from rows**: the first input of a version is built at publish time by
  :func:`cortex_trust.policy.build_input` (the one builder). Later evaluations start from that
  stored document and replace only the evidence that changed since (a review, usage, a
  revocation, a scan) and the clock (:func:`stored_input`, :func:`build_inputs`): no parsing, no
  cryptography.
* **batch evaluation**: :func:`decide_batch` asks :func:`cortex_trust.engine.decide` for every
  decision (Python never decides; an engine fault blocks), on one engine thread in the server
  (:class:`ThreadEvaluator`) or in the re-tiering workers (:func:`evaluate_items`).
* **rendering**: :func:`render_outcome` turns a decision into the stored columns and read
  documents (:mod:`registry._documents`), so a single write and a re-tiering run store the same
  bytes.

Only the standard library, pydantic models of :mod:`cortex_trust` and :mod:`registry._documents`
are imported here (no web framework, no ORM): re-tiering workers import this module in every
process they start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cortex_trust.engine import PolicyEngine, decide
from cortex_trust.errors import EngineError
from cortex_trust.policy import (
    Decision,
    DisputeEvidence,
    PolicyInput,
    PromotionEvidence,
    ReviewEvidence,
    RevocationEvidence,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    UsageEvidence,
    UsageReporter,
    build_receipt,
    engine_version,
    format_time,
    receipt_payload,
)

from ._documents import version_documents
from ._web._fragments import stored, version_fragment

__all__ = ["ITEM_COLUMNS", "Item", "Outcome", "ReporterFacts", "ThreadEvaluator", "UsageFacts", "build_inputs",
           "decide_batch", "evaluate_items", "item_from_row", "receipt_payload_of", "render_outcome", "stored_input",
           "version_input"]


class ReporterFacts(NamedTuple):
    """The stored usage reports of one organization (the installation tokens' namespace)."""

    organization: str
    #: Distinct installations (tokens) of the organization that reported.
    installations: int
    #: Distinct UTC days with at least one report.
    active_days: int
    #: First and last report (RFC 3339 UTC).
    first: str
    last: str


class UsageFacts(NamedTuple):
    """The stored usage reports of one digest: totals, and per organization."""

    first: str
    last: str
    active_days: int
    installations: int
    reporters: tuple[ReporterFacts, ...]


def version_input(base: PolicyInput, *, signature: SignatureEvidence | None,
                  scan: ScanEvidence | None, tests: TestEvidence | None,
                  review: ReviewEvidence | None, usage: UsageEvidence,
                  revocation: RevocationEvidence, now: datetime,
                  operation: str = "publish", now_text: str | None = None,
                  promotion: PromotionEvidence | None = None,
                  disputes: DisputeEvidence | None = None) -> PolicyInput:
    """``base`` with newer evidence pieces (``None`` keeps the base piece) and ``now``
    (``now_text``: ``format_time(now)``, when the caller has it already).

    Every piece handed in is about the version's digest (the store only passes rows bound to
    it); a piece about another digest would have been dropped by ``build_input`` at publish.
    """
    from typing import cast

    from cortex_trust.policy import refresh_input

    return refresh_input(base, now=now, operation=cast(Any, operation), now_text=now_text,
                         signature=signature, scan=scan, tests=tests, review=review, usage=usage,
                         revocation=revocation, promotion=promotion, disputes=disputes)


def stored_input(input_json: str, *, evidence: Mapping[str, str] | None,
                 usage: UsageFacts | None, digest: str, state: str,
                 revoked_reason: str | None, revoked_at: str | None, now: datetime,
                 registry_name: str, now_text: str | None = None) -> PolicyInput:
    """The input of a stored version at ``now``, from stored facts only (no cryptography).

    ``input_json`` is the publish-time input; ``evidence`` maps a kind (signature, scan,
    tests) to the facts JSON of the newest evidence row of that kind bound to ``digest``,
    ``review`` to the review piece listing every reviewer's review, ``promotion`` to the
    promotion piece of ``digest`` and ``disputes`` to the open disputes; ``usage`` aggregates the
    usage reports of ``digest`` (``None``: no production use), and the days in production
    (overall and per organization) are counted from the first report to ``now``; the
    revocation piece comes from the version's
    state (the registry's own revocation data, current as of ``now``). ``now_text`` is
    ``format_time(now)`` when the caller has it already (building many inputs). Raises
    pydantic's ``ValidationError`` when a stored document does not validate (a corrupt
    database): no input is ever built from facts that do not match the contract.
    """
    usage_ev = _NO_USAGE
    if usage is not None:
        reporters = [UsageReporter(organization=r.organization, installations=r.installations,
                                   active_days=r.active_days,
                                   days_in_production=_days_since(r.first, now), first=r.first,
                                   last=r.last) for r in usage.reporters]
        usage_ev = UsageEvidence(
            present=True, first_production_use=usage.first, last_production_use=usage.last,
            days_in_production=_days_since(usage.first, now), active_days=usage.active_days,
            installations=usage.installations,
            organizations=len({r.organization for r in usage.reporters if r.organization}),
            reporters=reporters, digest=digest, source=registry_name)
    fresh = now_text or format_time(now)
    revocation = RevocationEvidence(checked=True, revoked=state == "revoked",
                                    reason=revoked_reason, revoked_at=revoked_at,
                                    fresh_as_of=fresh, source=registry_name)
    pieces = evidence or {}
    return version_input(
        PolicyInput.model_validate_json(input_json),
        signature=_piece(pieces, "signature", SignatureEvidence),
        scan=_piece(pieces, "scan", ScanEvidence), tests=_piece(pieces, "tests", TestEvidence),
        review=_piece(pieces, "review", ReviewEvidence), usage=usage_ev, revocation=revocation,
        now=now, now_text=fresh, promotion=_piece(pieces, "promotion", PromotionEvidence),
        disputes=_piece(pieces, "disputes", DisputeEvidence))


#: No production use (frozen, so one instance serves every input).
_NO_USAGE = UsageEvidence()


def _days_since(first: str, now: datetime) -> int:
    """Whole days from the stored time ``first`` to ``now`` (0 if ``first`` is later)."""
    start = datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return max(0, (now - start).days)


def _piece(pieces: Mapping[str, str], kind: str, model: Any) -> Any:
    text = pieces.get(kind)
    return None if text is None else model.model_validate_json(text)


# ------------------------------------------------------------------ stored versions, rendered

_MANIFEST_PREFIX = len('{"document":')


class Item(NamedTuple):
    """What re-evaluating one stored version needs; plain values (sent to workers)."""

    #: The publish-time input document (``plugin_version.input_json``).
    input_json: str
    #: Kind -> facts JSON of the newest evidence row of that kind bound to ``digest`` (and
    #: ``review`` -> the review piece listing every reviewer's review, ``promotion`` and
    #: ``disputes`` -> the governance pieces).
    evidence: dict[str, str] | None
    #: The usage reports of ``digest`` (totals and per organization); None: no use.
    usage: UsageFacts | None
    digest: str
    state: str
    revoked_reason: str | None
    revoked_at: str | None
    namespace: str
    name: str
    version: str
    image: str
    published_at: str
    published_by: str
    signer_identity: str | None
    signer_issuer: str | None
    #: Shown in the version document while ``state`` is ``yanked`` (a yank never changes the
    #: input or the decision).
    yanked_reason: str | None = None
    yanked_at: str | None = None
    #: The digest of the Sigstore bundle published with the version (for its receipts).
    bundle_sha256: str | None = None


class Outcome(NamedTuple):
    """One version's new decision and documents, as stored."""

    tier: str
    action: str
    #: The decision's policy revision, cut to the column's 128 characters.
    policy_revision: str
    decision_json: str
    summary_json: str
    document_json: str
    #: True for the fail-closed block (the engine could not answer).
    failed: bool
    #: The payload of the decision's receipt (:func:`receipt_payload_of`), to be sealed.
    receipt: bytes = b""
    #: The version's page fragment (:func:`registry._web._fragments.version_fragment`; empty
    #: when it could not be rendered, ``None`` when staged before pages were stored).
    page_html: str | None = None


#: The ``plugin_version`` columns an :class:`Item` is made of, in the order
#: :func:`item_from_row` takes their values.
ITEM_COLUMNS = ("input_json", "digest", "state", "revoked_reason", "revoked_at", "version",
                "image", "published_at", "published_by", "signer_identity", "signer_issuer",
                "yanked_reason", "yanked_at")


def item_from_row(values: Sequence[Any], *, namespace: str, name: str,
                  evidence: dict[str, str] | None, usage: UsageFacts | None,
                  bundle_sha256: str | None = None) -> Item:
    """The :class:`Item` of one stored version of plugin ``namespace/name``.

    ``values`` are the version's :data:`ITEM_COLUMNS`, in that order (a SQL row selecting them,
    or ``operator.attrgetter(*ITEM_COLUMNS)`` of an ORM row); ``evidence`` and ``usage`` are
    its stored facts bound to its digest, ``bundle_sha256`` its published bundle's digest.
    """
    (input_json, digest, state, revoked_reason, revoked_at, version, image, published_at,
     published_by, signer_identity, signer_issuer, yanked_reason, yanked_at) = values
    return Item(input_json, evidence, usage, digest, state, revoked_reason, revoked_at, namespace,
                name, version, image, published_at, published_by, signer_identity, signer_issuer,
                yanked_reason, yanked_at, bundle_sha256)


def receipt_payload_of(item: Item, policy_input: PolicyInput, decision: Decision, *, engine: str,
                       decided_at: datetime, registry_name: str) -> bytes:
    """The payload of the receipt of ``decision`` on ``policy_input`` (the statement of
    :func:`cortex_trust.policy.build_receipt`, issued by ``registry NAME``)."""
    statement = build_receipt(decision=decision, policy_input=policy_input, engine=engine,
                              engine_version=engine_version(engine), decided_at=decided_at,
                              issuer=f"registry {registry_name}",
                              documents={"bundle": item.bundle_sha256} if item.bundle_sha256 else None)
    return receipt_payload(statement)


def render_outcome(item: Item, policy_input: PolicyInput, decision: Decision, *,
                   receipt: bytes = b"") -> Outcome:
    """The stored form of ``decision`` for ``item``: columns, the two read documents, the
    ``receipt`` payload and the version's page fragment."""
    decision_json = decision.model_dump_json()
    tier = decision.tier.value
    action = decision.action.value
    revision = decision.policy_revision[:128]
    manifest_json = policy_input.manifest.model_dump_json(include={"document"})[
        _MANIFEST_PREFIX:-1]
    summary, document = version_documents(
        namespace=item.namespace, name=item.name, version=item.version, image=item.image,
        digest=item.digest, state=item.state, tier=tier, action=action,
        published_at=item.published_at, policy_revision=revision,
        published_by=item.published_by, signer_identity=item.signer_identity,
        signer_issuer=item.signer_issuer, revoked_reason=item.revoked_reason,
        revoked_at=item.revoked_at, manifest_json=manifest_json,
        evidence_json=policy_input.evidence.model_dump_json(), decision_json=decision_json,
        yanked_reason=item.yanked_reason, yanked_at=item.yanked_at)
    page = stored(lambda: version_fragment(document))
    return Outcome(tier, action, revision, decision_json, summary, document,
                   bool(decision.failed), receipt, page)


def build_inputs(items: Sequence[Item], *, now: datetime,
                 registry_name: str) -> list[PolicyInput]:
    """The input of every item at ``now`` (see :func:`stored_input`)."""
    fresh = format_time(now)
    return [stored_input(it.input_json, evidence=it.evidence, usage=it.usage, digest=it.digest,
                         state=it.state, revoked_reason=it.revoked_reason,
                         revoked_at=it.revoked_at, now=now, registry_name=registry_name,
                         now_text=fresh) for it in items]


def evaluate_items(engine: Any, items: Sequence[Item], *, now: datetime,
                   registry_name: str) -> tuple[list[Outcome], tuple[float, float, float]]:
    """Decide every item on ``engine`` (through :func:`decide_batch`) and render its documents
    and its receipt's payload.

    Returns the outcomes (in order) and the CPU seconds spent building inputs, deciding and
    rendering. Raises pydantic's ``ValidationError`` when stored facts do not validate.
    """
    t0 = time.process_time()
    inputs = build_inputs(items, now=now, registry_name=registry_name)
    t1 = time.process_time()
    decisions = decide_batch(engine, inputs)
    t2 = time.process_time()
    outcomes = [render_outcome(it, inp, d, receipt=receipt_payload_of(
        it, inp, d, engine=engine.name, decided_at=now, registry_name=registry_name))
        for it, inp, d in zip(items, inputs, decisions, strict=True)]
    t3 = time.process_time()
    return outcomes, (t1 - t0, t2 - t1, t3 - t2)


# ------------------------------------------------------------------------- batch evaluation


def decide_batch(engine: PolicyEngine, inputs: Sequence[PolicyInput]) -> list[Decision]:
    """One decision per input, in order, each made by :func:`decide` (so validated and fail
    closed exactly like every other flow). Never raises for engine problems.

    The engine gets the batch in one call (:meth:`~cortex_trust.engine.PolicyEngine.evaluate_inputs`:
    the embedded engine keeps compiled mode for the shipped policies and evaluates the batch in
    one tight loop). A batch answer of the wrong length blocks the whole batch.
    """
    if len(inputs) < 2:
        return [decide(engine, i) for i in inputs]
    try:
        values = list(engine.evaluate_inputs(inputs))
    except Exception as e:  # noqa: BLE001 - any engine fault must end in block
        values = [e] * len(inputs)
    if len(values) != len(inputs):
        values = [EngineError("the engine returned a wrong number of answers")] * len(inputs)
    revision = engine.revision
    return [decide(_Answered(v, revision), i) for v, i in zip(values, inputs, strict=True)]


class _Answered(PolicyEngine):
    """A PolicyEngine whose answer is already known (one value of a batch evaluation, or the
    error that ended a batch: :func:`decide` turns an exception into the fail-closed block)."""

    name = "batch"

    def __init__(self, value: Any, revision: str) -> None:
        self.value = value
        self.revision = revision

    def _answer(self) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value

    def evaluate_input(self, policy_input: PolicyInput) -> Any:
        return self._answer()

    def evaluate(self, input_json: str) -> Any:
        return self._answer()


class ThreadEvaluator:
    """Evaluate inputs on one engine that lives on one dedicated thread.

    regorus engines are bound to the thread that created them (using one from another thread
    panics), while the web server calls from a pool of threads. So the engine is built by
    ``factory`` on a private single-thread executor and every evaluation is sent there; this
    also serialises evaluations. Calling it never raises for engine problems: :func:`decide`
    turns them into the fail-closed block.
    """

    def __init__(self, factory: Callable[[], PolicyEngine]) -> None:
        self._factory = factory
        self._engine: PolicyEngine | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-engine")

    def _engine_here(self) -> PolicyEngine:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def _run(self, inputs: Sequence[PolicyInput]) -> list[Decision]:
        return decide_batch(self._engine_here(), inputs)

    @property
    def revision(self) -> str:
        """The policy revision of the engine (builds it if needed)."""
        return self._pool.submit(lambda: self._engine_here().revision).result()

    @property
    def engine_name(self) -> str:
        """The engine's name (builds it if needed)."""
        return self._pool.submit(lambda: self._engine_here().name).result()

    def __call__(self, inputs: Sequence[PolicyInput]) -> list[Decision]:
        return self._pool.submit(self._run, list(inputs)).result()

    def close(self) -> None:
        """Close the engine (an isolated worker process, if any) and stop the thread."""
        def _close() -> None:
            if self._engine is not None:
                self._engine.close()

        self._pool.submit(_close).result()
        self._pool.shutdown(wait=True)
