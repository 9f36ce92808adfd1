"""``cortex receipt``: check a decision receipt and replay it under today's policy.

A receipt (written by a registry for each of its decisions, served at
``GET /api/v1/plugins/NS/NAME/versions/V/receipt``, or by ``cortex plugin verify --receipt``)
records a decision with the exact input it was made on (see
:mod:`cortex_trust.policy._receipt`).

Exit codes:

* ``get``: 0 written, 2 bad input (also a version or receipt the registry does not hold: its
  404 with its fix), 3 the registry could not be read.
* ``verify``: 0 the receipt is valid (signed by a key of ``--root``/``--key``, digests intact),
  1 it is not (unsigned, signed by another key, or changed after signing), 2 bad input (not a
  receipt, an unreadable root or key, neither given).
* ``replay``: 0 today's policy decides the same (tier, action, next tier, sandbox, overridable,
  failed and reason codes; the signature is not checked: that is ``verify``), 1 it
  decides differently (the differences are printed), 2 bad input (not a receipt, an input that no
  longer matches its digest, an invalid policy), 3 the decision failed closed (the engine could
  not answer).

Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._options import DataOpt, NoDefaultsOpt, PolicyDirOpt

if TYPE_CHECKING:
    from cortex_trust.policy import Receipt

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="Decision receipts: verify a receipt's signature, replay its decision.")

ReceiptArg = Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                            help="The receipt (a DSSE envelope, JSON).")]
FormatOpt = Annotated[str, typer.Option("--format", metavar="text|json",
                                        help="text for people, json: one document on stdout.")]
_MAX_KEY_BYTES = 512_000


def _read(path: Path, *, what: str, max_bytes: int) -> bytes:
    from cortex_trust._io import ReadRefused, read_bounded

    from ._errors import fail

    try:
        return read_bounded(path, max_bytes=max_bytes)
    except ReadRefused as e:
        fail(f"cannot read {what} {path} ({e})", advice=f"pass {what} as a readable file")


def _load(path: Path) -> Receipt:
    from cortex_trust.policy import read_receipt
    from cortex_trust.policy._receipt import MAX_RECEIPT_BYTES

    return read_receipt(_read(path, what="the receipt", max_bytes=MAX_RECEIPT_BYTES))


def _check_format(output_format: str) -> None:
    from ._errors import fail

    if output_format not in ("text", "json"):
        fail(f"--format {output_format!r} is not text or json", advice="use --format text or --format json")


def _about(statement: dict[str, Any]) -> str:
    """One line about what the receipt records, shown inert (the receipt was written by others)."""
    from ._inert import neutralise

    subject = statement["subject"]
    decision = statement["decision"]
    return neutralise(f"{subject.get('plugin')}@{subject.get('version')}: tier {decision.get('tier')}, action "
                      f"{decision.get('action')}, decided {statement.get('decided_at')} by "
                      f"{statement.get('issuer')}")


@app.command("get")
def get(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME@VERSION", show_default=False,
                                       help="The version, e.g. acme/my-plugin@1.2.0.")],
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="URL", show_default=False,
        help="The registry (default: the one the name resolves from, as install resolves it).")] = None,
    every: Annotated[bool, typer.Option(
        "--all", help='Every receipt of the version, oldest first ({"items": [...]}).')] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", show_default=False,
        help="Write the receipt to FILE instead of stdout.")] = None,
) -> None:
    """Fetch a version's decision receipt from its registry (check it with `cortex receipt verify`).
    Exit 0 written, 2 bad input (or not in the registry), 3 the registry could not be read."""
    from cortex_trust.sources import RegistryClient

    from ._errors import EXIT_UNAVAILABLE, fail
    from .plugin_registry import _ref, _registry_for

    ns, name, version = _ref(ref)
    with RegistryClient(_registry_for(registry, f"{ns}/{name}")) as client:
        content = client.get_receipt(ns, name, version, every=every)
    if out is None:
        # Re-serialised ASCII-only: the registry's text never reaches the terminal raw (every
        # control character is escaped); the signed payload is unchanged, so it still verifies.
        from cortex_trust._json import load_json

        print(json.dumps(load_json(content), indent=2, ensure_ascii=True))
        return
    try:
        out.write_bytes(content)
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror or e}", advice="check the path and its directory",
             code=EXIT_UNAVAILABLE)
    print(f"wrote the receipt of {ns}/{name}@{version} to {out}", file=sys.stderr)


@app.command("verify")
def verify(
    file: ReceiptArg,
    root: Annotated[Path | None, typer.Option(
        "--root", metavar="FILE", show_default=False,
        help="The registry's signed-index trusted root (its metadata/root.json, from its operator): the "
             "receipt must be signed by the key it names for the timestamp role.")] = None,
    key: Annotated[Path | None, typer.Option(
        "--key", metavar="FILE", show_default=False,
        help="A public key (PEM) the receipt may be signed with instead.")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="NAME", show_default=False,
        help="Use the index root configured for this registry (`cortex config registries add NAME ... "
             "--index-root FILE`) as --root.")] = None,
    output_format: FormatOpt = "text",
) -> None:
    """Check a receipt: its signature (by a key of --root, --registry's index root or --key), its
    input digest and its evidence digests. Exit 0 valid, 1 invalid (unsigned, another key, or
    changed), 2 bad input."""
    from cortex_trust.policy import receipt_keys, verify_receipt

    from ._errors import fail
    from ._inert import neutralise

    _check_format(output_format)
    if root is not None and registry is not None:
        fail("--root and --registry both name a root", advice="give one of them")
    root_bytes = _read(root, what="--root", max_bytes=_MAX_KEY_BYTES) if root else None
    if registry is not None:
        root_bytes = _configured_root(registry)
    if root_bytes is None and key is None:
        fail("give the key to check the receipt with: --root, --registry or --key",
             advice="pass the registry's index root (--root metadata/root.json) or its public key (--key FILE)")
    receipt = _load(file)
    keys = receipt_keys(root=root_bytes, key=_read(key, what="--key", max_bytes=_MAX_KEY_BYTES) if key else None)
    check = verify_receipt(receipt, keys=keys)
    statement = receipt.statement
    if output_format == "json":
        print(json.dumps({"valid": check.valid, "keyid": check.keyid, "problems": check.problems,
                          "subject": statement.get("subject"), "decided_at": statement.get("decided_at"),
                          "issuer": statement.get("issuer"), "policy_revision": statement.get("policy_revision"),
                          "input_sha256": statement["input"].get("sha256")}, indent=2))
    elif check.valid:
        print(f"valid: {_about(statement)}")
        print(f"  signed by key {check.keyid}")
        print(neutralise(f"  policy revision {statement.get('policy_revision')}, input "
                         f"{statement['input'].get('sha256')}"))
    else:
        print(f"invalid: {_about(statement)}")
        for problem in check.problems:
            print(neutralise(f"  - {problem}"))
    raise typer.Exit(0 if check.valid else 1)


def _configured_root(name: str) -> bytes:
    """The index root configured for registry ``name``; exit 2 when there is none."""
    from cortex_trust.install import load_config

    from ._errors import fail
    from ._paths import config_path

    entry = next((r for r in load_config(config_path()).registries if r.name == name), None)
    if entry is None:
        fail(f"no registry named {name!r} is configured", advice="see `cortex config list`")
    if entry.index_root is None:
        fail(f"the registry {name!r} has no index root configured",
             advice=f"`cortex config registries add {name} URL --index-url URL --index-root FILE`, or pass --root FILE")
    return entry.index_root.encode("utf-8")


@app.command("replay")
def replay(
    file: ReceiptArg,
    policy_dirs: PolicyDirOpt = None,
    data_files: DataOpt = None,
    no_defaults: NoDefaultsOpt = False,
    output_format: FormatOpt = "text",
) -> None:
    """Decide the receipt's stored input again with today's policy (embedded engine) and show
    whether the decision is the same. The input is checked against its digest; the signature is
    not (use `cortex receipt verify`). Exit 0 same, 1 different, 2 bad input, 3 failed closed."""
    from cortex_trust.engine import EmbeddedEngine, decide
    from cortex_trust.policy import decision_changes, receipt_input

    from ._inert import neutralise
    from ._options import load_org_policy

    _check_format(output_format)
    receipt = _load(file)
    policy_input = receipt_input(receipt)
    policy_set = load_org_policy(policy_dirs, data_files, defaults=not no_defaults)
    with EmbeddedEngine(policy_set) as engine:
        decision = decide(engine, policy_input)
    then = receipt.statement["decision"]
    now = decision.to_json_dict()
    changes = decision_changes(then, now)
    same = bool(changes.pop("same"))
    if output_format == "json":
        print(json.dumps({"same": same, "changes": changes, "then": then, "now": now,
                          "signature_checked": False,
                          "policy_revision": {"then": receipt.statement.get("policy_revision"),
                                              "now": decision.policy_revision}}, indent=2))
    else:
        print(f"{'same' if same else 'different'}: {_about(receipt.statement)}")
        lines = [f"  policy revision then {receipt.statement.get('policy_revision')}, now {decision.policy_revision}"]
        for field in ("tier", "action", "next_tier", "sandbox", "overridable", "failed"):
            if field in changes:
                before, after = changes[field]
                lines.append(f"  {field}: {_short(before)} -> {_short(after)}")
        for label, key in (("reasons added", "added"), ("reasons removed", "removed")):
            if key in changes:
                lines.append(f"  {label}: {', '.join(changes[key])}")
        if "reasons" in changes:
            lines.append(f"  reasons reordered: {', '.join(changes['reasons'][0])} -> "
                         f"{', '.join(changes['reasons'][1])}")
        for line in lines:
            print(neutralise(line))
        print("  note: signature not checked (use `cortex receipt verify`)", file=sys.stderr)
        if not receipt.signed:
            print("  note: the receipt is unsigned: it proves nothing about who decided", file=sys.stderr)
    if decision.failed:
        raise typer.Exit(3)
    raise typer.Exit(0 if same else 1)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)
