"""Generators of complete, schema-valid policy input documents (``PolicyInput``), for tests and bench.

One generator, two sources of randomness: every builder takes a :class:`Chooser`, which is either
hypothesis (:class:`HypothesisChooser`, shrinking works) or a seeded :class:`random.Random`
(:class:`RandomChooser`, fast and reproducible, what ``bench/decisions.py`` uses). Both produce
the same shapes, so the bench measures the inputs the tests check.

The values are aimed at every branch of the policies: trusted identities, issuers, reviewers,
thresholds and allowlisted CVE ids are harvested from the policy data files
(``policies/data.yaml``, ``examples/acme/data.yaml``) at import time, concretised when they are
patterns, and mixed with untrusted look-alikes. A first ``aim`` draw biases every evidence piece
towards passing or failing, so high tiers (which need every piece to pass) are common too.

Ranges: counts and days are non-negative and far below 2^64, and strings carry no NUL byte,
although the schema allows both. Outside those ranges regorus 0.13.0 and OPA disagree
(``sprintf("%d", [-1])`` is ``"--1"`` in regorus, integers beyond 2^64 become floats, and
``glob.match`` raises on NUL); ``tests/engine/test_oracle.py`` pins those cases as strict xfails.

Public API (``from tests.support.strategies import ...``; bench adds the repository root to the path):

* ``policy_inputs()`` – hypothesis strategy of :class:`PolicyInput`.
* ``input_documents()`` – hypothesis strategy of the same as plain dicts.
* ``degraded_pairs()`` / ``reduced_pairs()`` – ``(before, after, what)``: ``after`` is ``before``
  with one piece of evidence made failing / removed (for monotonicity properties).
* ``random_documents(n, seed=...)`` – the seeded plain-``random`` generator (dicts).
* ``build_document(chooser)``, ``degrade(doc, kind, chooser)``, ``remove(doc, kind)``.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from hypothesis import strategies as st

from cortex_trust.policy import PolicyInput, format_time

__all__ = [
    "DEGRADABLE",
    "DIGEST",
    "NOW",
    "ODD_TIMES",
    "OTHER_DIGEST",
    "REMOVABLE",
    "Chooser",
    "HypothesisChooser",
    "RandomChooser",
    "Vocabulary",
    "build_document",
    "degrade",
    "degraded_pairs",
    "input_documents",
    "policy_inputs",
    "random_documents",
    "reduced_pairs",
    "remove",
    "vocabulary",
]

T = TypeVar("T")

_ROOT = Path(__file__).resolve().parents[2]
_DATA_FILES = (
    _ROOT / "policies" / "data.yaml",
    _ROOT / "examples" / "acme" / "data.yaml",
    _ROOT / "tests" / "fixtures" / "oracle_data" / "data.yaml",
)

#: The reference time of every generated input (``context.now``).
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
_GHA = "https://token.actions.githubusercontent.com"


class Chooser(Protocol):
    """The one source of randomness the builders use."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, lo: int, hi: int) -> int: ...


class RandomChooser:
    """A :class:`Chooser` over a seeded :class:`random.Random` (deterministic for a seed)."""

    def __init__(self, seed: int = 0) -> None:
        self._r = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._r.randrange(len(options))]

    def integer(self, lo: int, hi: int) -> int:
        return self._r.randint(lo, hi)


class HypothesisChooser:
    """A :class:`Chooser` drawing from hypothesis (so failures shrink)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))  # type: ignore[no-any-return]

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- vocabulary


def _concretise(pattern: str) -> list[str]:
    """Turn a glob or regex identity pattern into strings it matches (best effort)."""
    s = pattern
    if s.startswith("^") or s.endswith("$") or "\\." in s:
        s = s.lstrip("^").rstrip("$")
        for pat, rep in ((r"\[\^/\]\+", "x1"), (r"\[\^/\]\*", "x1"), (r"\.\*", "x1/y2"),
                         (r"\.\+", "x1"), (r"\\\.", "."), (r"\\/", "/"), (r"\\-", "-")):
            s = re.sub(pat, rep, s)
        s = re.sub(r"\((?:[^()|]*\|)*([^()|]*)\)", r"\1", s)  # (a|b) -> b
        s = s.replace("?", "")
        return [s]
    if "*" in s or "?" in s:
        out = [s.replace("**", "x1/y2").replace("*", "x1").replace("?", "z")]
        if "**" in s:
            out.append(s.replace("**", "x1").replace("*", "x1").replace("?", "z"))
        return out
    return [s]


def _glob_match(pattern: str, value: str) -> bool:
    """Rego's ``glob.match(pattern, ["/"], value)`` for ``*`` and ``?`` (enough to pick signers)."""
    rx = "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, value) is not None


class Vocabulary:
    """Values harvested from the policy data files, by where they appear."""

    def __init__(self) -> None:
        self.identities: set[str] = set()
        self.issuers: set[str] = {_GHA, "https://accounts.google.com"}
        self.pairs: set[tuple[str, str]] = set()
        self.reviewers: set[str] = set()
        self.vuln_ids: set[str] = set()
        self.numbers: set[int] = set()
        self.namespaces: set[str] = {"cortex", "acme", "other"}
        #: (identity, issuer, plugin globs) of each trusted signer entry
        self.signers: set[tuple[str, str, tuple[str, ...]]] = set()
        #: plugin full names that appear in the data (denied plugins, signer scopes)
        self.full_names: set[str] = set()

    def harvest(self, node: Any, path: tuple[str, ...] = ()) -> None:
        joined = "/".join(path).lower()
        if isinstance(node, dict):
            # An object holding an identity and an issuer is one trusted signer.
            ident = next((node[k] for k in ("identity", "subject", "san", "identity_pattern",
                                             "identity_glob", "identity_regex", "pattern")
                          if isinstance(node.get(k), str)), None)
            iss = node.get("issuer")
            if isinstance(ident, str) and isinstance(iss, str):
                globs = node.get("plugins")
                globs = tuple(g for g in globs if isinstance(g, str)) if isinstance(
                    globs, list) else ()
                for concrete in _concretise(ident):
                    self.pairs.add((concrete, iss))
                    self.signers.add((concrete, iss, globs))
                for g in globs:
                    self.full_names.update(_concretise(g))
            for k, v in node.items():
                key = str(k)
                if re.fullmatch(r"(CVE|GHSA)-[\w-]+", key):
                    self.vuln_ids.add(key)
                if "denied" in joined or "deprecated" in joined or "plugins" in joined:
                    self.full_names.update(_concretise(key))
                self.harvest(v, (*path, key))
        elif isinstance(node, list):
            for item in node:
                self.harvest(item, path)
        elif isinstance(node, bool):
            return
        elif isinstance(node, int):
            if 0 < node < 10_000:
                self.numbers.add(node)
        elif isinstance(node, str):
            if re.fullmatch(r"(CVE|GHSA)-[\w-]+", node):
                self.vuln_ids.add(node)
            elif "plugins" in joined or "denied" in joined or "deprecated" in joined:
                self.full_names.update(_concretise(node))
            elif "issuer" in joined and node.startswith("http"):
                self.issuers.add(node)
            elif node.startswith("https://") or ("@" in node and "review" not in joined):
                self.identities.update(_concretise(node))
            elif "review" in joined:
                self.reviewers.add(node)

    def freeze(self) -> None:
        """Fill in defaults so every list is non-empty, and sort (for determinism)."""
        self.identities |= {i for i, _ in self.pairs}
        self.issuers |= {s for _, s in self.pairs}
        self.identities |= {
            "https://github.com/cortex-plugins/hello/.github/workflows/release.yml@refs/tags/v1.0.0",
            "https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v1.0.0",
            "https://github.com/acme/hello/.github/workflows/release.yml@refs/heads/main",
            "https://github.com/evil/hello/.github/workflows/release.yml@refs/heads/main",
            "https://github.com/acme-evil/x/.github/workflows/release.yml@refs/heads/main",
            "mallory@example.com",
        }
        self.reviewers |= {"mallory", "eve@example.com"}
        self.vuln_ids |= {"CVE-2024-0001", "CVE-2099-9999", "GHSA-xxxx-yyyy-zzzz"}
        self.numbers |= {1, 7, 30}
        self.sorted_identities = sorted(self.identities)
        self.sorted_issuers = sorted(self.issuers)
        self.sorted_pairs = sorted(self.pairs) or [(self.sorted_identities[0], _GHA)]
        self.sorted_reviewers = sorted(self.reviewers)
        self.sorted_vuln_ids = sorted(self.vuln_ids)
        self.full_names = {n for n in self.full_names if re.fullmatch(r"[a-z0-9/-]+", n)}
        self.namespaces |= {n.split("/")[0] for n in self.full_names if "/" in n}
        self.sorted_namespaces = sorted(self.namespaces)
        self.sorted_full_names = sorted(self.full_names)
        self.sorted_signers = sorted(self.signers)
        # Thresholds and the values either side of them (days, counts, hours).
        self.near_numbers = sorted({m for n in self.numbers for m in (n - 1, n, n + 1) if m >= 0})


def vocabulary() -> Vocabulary:
    """Harvest the data files that exist now (they may be edited while tests are written)."""
    v = Vocabulary()
    for f in _DATA_FILES:
        if f.is_file():
            v.harvest(yaml.safe_load(f.read_text()) or {})
    v.freeze()
    return v


VOCAB = vocabulary()

# --------------------------------------------------------------------------- builders

#: Pieces of evidence that can be made to fail / be removed by the monotonicity helpers.
DEGRADABLE = ("manifest", "signature", "scan", "tests", "review", "usage", "revocation", "promotion")
REMOVABLE = ("signature", "scan", "tests", "review", "usage", "revocation", "promotion")

_AIMS = {
    # the weight list for "this piece passes", per aim
    "all_good": [True],
    "mostly_good": [True, True, True, True, False],
    "random": [True, False],
    "mostly_bad": [True, False, False, False],
}


#: Strings in time fields that are not RFC 3339 UTC seconds, or are in the future.
ODD_TIMES = (
    "2026-02-30T00:00:00Z", "2026-06-01 12:00:00", "yesterday", "", "2026-06-01T11:59:59.5Z",
    "2026-06-01T13:00:00+02:00", "2026-06-01T13:00:00Z", "2024-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
)


def _t(delta: timedelta) -> str:
    return format_time(NOW - delta)


def _digest(c: Chooser, good: bool) -> str | None:
    if good:
        return DIGEST
    return c.choice([DIGEST, DIGEST, None, OTHER_DIGEST])


def _manifest(c: Chooser, good: bool, name: str, version: str, image: str) -> dict[str, Any]:
    if not good and c.choice([True, False]):
        return {"valid": False, "document": None,
                "problems": [c.choice(["manifest.yaml:1:1: name: not a slug (fix: use a-z0-9-)",
                                       "manifest.yaml:3:10: version: 1.1 is a float (fix: quote it)"])]}
    trust: dict[str, Any] = {
        "min_cortex_version": "0.1.0" if good else c.choice(["0.1.0", "0.1.0", "0.2.0", "1.0.0"])}
    trust["sandbox"] = True if good else c.choice([True, True, False])
    trust["network"] = c.choice([False, False, True])
    trust["filesystem"] = c.choice([False, False, True])
    return {
        "valid": True,
        "problems": [],
        "document": {
            "name": name,
            "version": version,
            "description": "A plugin generated for property tests.",
            "author": "Test Author <test@example.com>",
            "license": c.choice(["MIT", "Apache-2.0"]),
            "runtime": {"type": "docker", "image": image},
            "capabilities": [{"name": "greet", "description": "Say hello.",
                              "endpoint": "/greet", "method": c.choice(["GET", "POST"])}],
            "trust": trust,
        },
    }


def _signature(c: Chooser, good: bool, full_name: str) -> dict[str, Any]:
    if not good:
        mode = c.choice(["absent", "absent", "unverified", "untrusted", "wrong_issuer", "mismatch"])
    else:
        mode = "trusted"
    if mode == "absent":
        return {"present": False}
    if mode == "unverified":
        return {"present": True, "verified": False, "error": "signature does not verify",
                "source": "bundle.sigstore.json"}
    if mode == "trusted":
        scoped = [(i, s) for i, s, globs in VOCAB.sorted_signers
                  if any(_glob_match(g, full_name) for g in globs)]
        identity, issuer = c.choice(scoped or VOCAB.sorted_pairs)
    elif mode == "wrong_issuer":
        identity, _ = c.choice(VOCAB.sorted_pairs)
        issuer = c.choice(["https://accounts.google.com", "https://issuer.evil.example"])
    else:
        identity = c.choice(VOCAB.sorted_identities)
        issuer = c.choice(VOCAB.sorted_issuers)
    repo = re.match(r"https://github\.com/([^/]+/[^/]+)/", identity)
    return {
        "present": True,
        "verified": True,
        "kind": c.choice(["message_signature", "dsse"]),
        "identity": identity,
        "issuer": issuer,
        "github": ({"repository": repo.group(1), "workflow_ref": identity.split("github.com/")[1],
                    "sha": "0" * 40, "trigger": c.choice(["push", "release"])} if repo else None),
        "subject_digest": OTHER_DIGEST if mode == "mismatch" else DIGEST,
        "integrated_time": _t(timedelta(days=c.choice([1, 40]))),
        "trusted_root": "sigstore-production",
        "source": "bundle.sigstore.json",
    }


def _scan(c: Chooser, good: bool) -> dict[str, Any]:
    mode = "clean" if good else c.choice(
        ["absent", "unbound", "partial", "vulns", "vulns", "secrets", "error", "clean"])
    if mode == "absent":
        return {"present": False}
    if mode == "error" and c.choice([True, False]):
        return {"present": False, "error": "trivy failed: no such image", "source": "trivy"}
    scanners = ["vuln", "secret", "misconfig"] if mode != "partial" else c.choice(
        [["secret"], ["vuln"], ["secret", "misconfig"], []])
    vulns: list[dict[str, Any]] = []
    n_vulns = c.integer(0, 3) if mode in ("vulns", "clean", "partial") else 0
    for _ in range(n_vulns):
        allowlisted = c.choice([True, False])
        vid = c.choice(VOCAB.sorted_vuln_ids) if allowlisted else c.choice(
            ["CVE-2024-0001", "CVE-2023-12345", "GHSA-aaaa-bbbb-cccc"])
        sev = c.choice(["LOW", "MEDIUM"] if mode == "clean" else
                       ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
        vulns.append({"id": vid, "severity": sev, "package": "openssl",
                      "installed_version": "3.0.1", "fixed_version": c.choice(["", "3.0.2"])})
    counts: dict[str, int] = {}
    for v in vulns:
        counts[v["severity"]] = counts.get(v["severity"], 0) + 1
    bound = mode != "unbound"
    return {
        "present": True,
        "bound": bound,
        "digest": DIGEST if bound else c.choice([None, OTHER_DIGEST]),
        "produced_by": c.choice(["report", "trivy"]),
        "scanners": scanners,
        "trivy_version": "0.76.0",
        "db_updated_at": _t(timedelta(days=c.choice([0, 2, 40]))),
        "created_at": _t(timedelta(hours=1)),
        "counts": counts,
        "vulnerabilities": vulns,
        "secrets": c.choice([1, 2]) if mode == "secrets" else 0,
        "misconfigurations": c.choice([0, 0, 2]),
        # a report can be complete on paper and still say that a scanner failed
        "error": "vulnerability DB download failed" if mode == "error" else None,
        "source": "trivy-report.json",
        # who produced it: the registry's own scan counts at every operation by default; a
        # publisher's report, a pipeline's at install, an untrusted attester's or none do not
        "origin": "registry" if good else c.choice(
            ["registry", "registry", "attested", "pipeline", "self-reported", None]),
    }


def _tests(c: Chooser, good: bool) -> dict[str, Any]:
    mode = "pass" if good else c.choice(["absent", "fail", "error", "empty", "other_digest"])
    if mode == "absent":
        return {"present": False}
    total = 0 if mode == "empty" else c.integer(1, 60)
    failures = c.integer(1, max(1, total)) if mode == "fail" else 0
    errors = 1 if mode == "error" else 0
    # a passing run executes at least one test (total - skipped >= 1)
    skipped_max = total - failures - errors - (1 if mode == "pass" else 0)
    skipped = c.integer(0, max(0, skipped_max)) if c.choice([True, False]) else 0
    return {"present": True, "total": total, "failures": failures, "errors": errors,
            "skipped": skipped, "digest": OTHER_DIGEST if mode == "other_digest" else DIGEST,
            "source": "junit.xml"}


_UNLISTED_REVIEWERS = ("mallory", "eve@example.com", "partner/bob")


def _review_record(c: Chooser, reviewer: str, verdict: str) -> dict[str, Any]:
    return {"reviewer": reviewer, "verdict": verdict,
            "at": _t(timedelta(days=c.choice([1, 10]))) if c.choice([True, True, False]) else None,
            "source": c.choice(["review.json", "cortex-registry", None])}


def _review(c: Chooser, good: bool) -> dict[str, Any]:
    """A review piece: every reviewer's review; a passing one has a listed reviewer's approval
    and no listed reviewer's objection, whatever unlisted reviewers said."""
    mode = "approved_listed" if good else c.choice(
        ["absent", "empty", "approved_unlisted", "rejected", "changes_requested",
         "approved_and_objection", "other_digest"])
    if mode == "absent":
        return {"present": False}
    listed = [r for r in VOCAB.sorted_reviewers if r not in _UNLISTED_REVIEWERS] or \
        VOCAB.sorted_reviewers
    records: list[dict[str, Any]] = []
    if mode in ("approved_listed", "other_digest", "approved_and_objection"):
        records.append(_review_record(c, c.choice(listed), "approved"))
    if mode in ("rejected", "changes_requested"):
        records.append(_review_record(c, c.choice(listed), mode))
    if mode == "approved_and_objection":
        records.append(_review_record(c, c.choice(listed),
                                      c.choice(["rejected", "changes_requested"])))
    # Unlisted reviewers say anything, before or after; they must never change the outcome.
    for _ in range(c.choice([1, 2] if mode == "approved_unlisted" else [0, 0, 1, 2])):
        records.insert(c.integer(0, len(records)), _review_record(
            c, c.choice(_UNLISTED_REVIEWERS),
            "approved" if mode == "approved_unlisted" else
            c.choice(["approved", "rejected", "changes_requested"])))
    return {"present": True, "reviews": records,
            "digest": OTHER_DIGEST if mode == "other_digest" else DIGEST, "source": "review.json"}


_ORGANIZATIONS = ("initech", "globex", "umbrella")


def _reporter(c: Chooser, org: str, *, continued: bool) -> dict[str, Any]:
    near = VOCAB.near_numbers
    if continued:
        days = c.choice([d for d in [*near, 31, 90, 400] if d >= 31])
        active = c.choice([d for d in [*near, 20, 21, days] if 21 <= d <= days + 1])
    else:
        days = c.choice([*near, 0, 1, 29, 30, 31, 90])
        active = c.choice([d for d in [*near, 1, 2, 19, 20] if 1 <= d <= days + 1] or [1])
    first = _t(timedelta(days=days))
    return {"organization": org, "installations": c.choice([1, 2, 40]), "active_days": active,
            "days_in_production": days, "first": first,
            "last": _t(timedelta(days=c.integer(0, min(days, 3))))}


def _usage(c: Chooser, good: bool) -> dict[str, Any]:
    """A usage piece; a passing one has at least two organizations other than any namespace
    (the publisher's own reports never count) that reported continued use."""
    if not good and c.choice([True, False]):
        return {"present": False}
    days_pool = [d for d in [*VOCAB.near_numbers, 0, 29, 30, 31, 90, 400] if d <= 1000]
    days = c.choice([d for d in days_pool if d >= 31] if good else days_pool)
    first = _t(timedelta(days=days)) if good or c.choice([True, True, True, False]) else c.choice(
        ODD_TIMES)
    mode = "continued" if good else c.choice(
        ["none", "one_org", "single_reports", "publisher_only", "continued", "mixed"])
    reporters: list[dict[str, Any]] = []
    if mode in ("continued", "mixed"):
        reporters += [_reporter(c, org, continued=True) for org in _ORGANIZATIONS[:2]]
    if mode == "one_org":
        reporters.append(_reporter(c, c.choice(_ORGANIZATIONS), continued=True))
    if mode in ("single_reports", "mixed"):
        reporters += [{**_reporter(c, org, continued=False), "active_days": 1}
                      for org in _ORGANIZATIONS[1:]]
    if mode == "publisher_only" or c.choice([False, False, True]):
        # A namespace's own reports: independent only for another plugin's namespace.
        reporters.append(_reporter(c, c.choice(VOCAB.sorted_namespaces), continued=True))
    organizations = len({r["organization"] for r in reporters})
    return {"present": True, "first_production_use": first,
            "last_production_use": _t(timedelta(days=c.choice([0, 1]))) if reporters else None,
            "days_in_production": days,
            "active_days": max([r["active_days"] for r in reporters], default=0),
            "installations": c.choice([0, 1, 5, 1000]), "organizations": organizations,
            "reporters": reporters, "digest": DIGEST, "source": "usage.json"}


def _revocation(c: Chooser, good: bool) -> dict[str, Any]:
    mode = "fresh" if good else c.choice(
        ["unchecked", "revoked", "stale", "fresh", "no_time", "odd_time"])
    if mode == "unchecked":
        return {"checked": False}
    if mode == "odd_time":
        # the schema says "string": malformed, impossible, offset or future times must not pass
        return {"checked": True, "revoked": False, "fresh_as_of": c.choice(ODD_TIMES)}
    if mode == "revoked":
        return {"checked": True, "revoked": True, "reason": "key compromise",
                "revoked_at": _t(timedelta(hours=2)), "fresh_as_of": _t(timedelta(minutes=5)),
                "source": "https://registry.cortexpersist.com/api/v1/revocations"}
    if mode == "no_time":
        return {"checked": True, "revoked": False, "fresh_as_of": None}
    age = (timedelta(minutes=c.choice([0, 5, 60])) if mode == "fresh" else
           timedelta(hours=c.choice([*VOCAB.near_numbers, 25, 49, 24 * 8, 24 * 31])))
    return {"checked": True, "revoked": False, "fresh_as_of": _t(age),
            "source": "https://registry.cortexpersist.com/api/v1/revocations"}


#: GitHub logins for promotion reviews: listed in tests/fixtures/oracle_data/data.yaml (in any
#: case), or nobody's reviewer.
_PROMOTION_LOGINS = ("octo-reviewer", "Octo-Reviewer", "core-lead", "mallory")


def _promotion(c: Chooser, good: bool) -> dict[str, Any]:
    """A promotion piece: a passing one is an open or merged pull request whose head names the
    digest, approved by a listed login (under the oracle data), with no listed objection."""
    mode = "approved" if good else c.choice(
        ["absent", "pending", "closed", "changes_requested", "head_changed", "unlisted", "other_digest"])
    if mode == "absent":
        return {"present": False}
    login = c.choice(_PROMOTION_LOGINS[:3])
    reviews: list[dict[str, Any]] = []
    if mode in ("approved", "closed", "head_changed", "other_digest", "changes_requested"):
        reviews.append({"login": login, "state": "approved", "at": _t(timedelta(days=1))})
    if mode == "changes_requested":
        reviews.append({"login": c.choice(_PROMOTION_LOGINS[:3]), "state": "changes_requested"})
    if mode == "unlisted" or c.choice([False, False, True]):
        reviews.append({"login": "mallory", "state": c.choice(["approved", "changes_requested", "dismissed"])})
    merged = mode == "approved" and c.choice([False, True])
    return {"present": True, "url": "https://github.com/cortex/registry-index/pull/7", "number": 7,
            "repository": "cortex/registry-index",
            "state": "closed" if merged or mode == "closed" else "open", "merged": merged,
            "head_digest": c.choice([OTHER_DIGEST, None]) if mode == "head_changed" else DIGEST,
            "reviews": reviews, "digest": OTHER_DIGEST if mode == "other_digest" else DIGEST,
            "source": c.choice(["cortex-registry", None])}


def _disputes(c: Chooser, good: bool) -> dict[str, Any]:
    """The disputes piece: none, or open and closed disputes with and without a warning label."""
    if good or c.choice([True, False]):
        return {"present": False}
    disputes = [{"url": f"https://github.com/cortex/registry-index/issues/{n}", "number": n,
                 "state": c.choice(["open", "closed"]),
                 "labels": c.choice([["dispute"], ["dispute", "security"], ["Security"], []])}
                for n in range(c.choice([1, 2]))]
    return {"present": True, "disputes": disputes, "source": "cortex-registry"}


_PIECES: dict[str, Callable[[Chooser, bool], dict[str, Any]]] = {
    "scan": _scan, "tests": _tests, "review": _review, "usage": _usage, "revocation": _revocation,
    "promotion": _promotion, "disputes": _disputes,
}


def build_document(c: Chooser) -> dict[str, Any]:
    """One complete input document (a dict that ``PolicyInput.model_validate`` accepts)."""
    goods = _AIMS[c.choice(list(_AIMS))]
    namespace = c.choice([*VOCAB.sorted_namespaces, None])
    name = c.choice(["hello", "weather", "net-probe"])
    version = c.choice(["1.0.0", "0.1.0", "2.3.4-rc.1"])
    full_name = f"{namespace}/{name}" if namespace else name
    use_listed_name: bool = c.choice([False, False, False, True])
    if VOCAB.sorted_full_names and use_listed_name:
        # a name the data singles out (a denied plugin, a signer's scope)
        full_name = c.choice(VOCAB.sorted_full_names)
        namespace, _, name = full_name.rpartition("/")
        namespace = namespace or None
    pinned = c.choice(goods)
    image_repo = f"ghcr.io/{namespace or 'library'}/{name}"
    image = f"{image_repo}@{DIGEST}" if pinned else f"{image_repo}:{version}"
    evidence: dict[str, Any] = {"signature": _signature(c, c.choice(goods), full_name)}
    for kind, fn in _PIECES.items():
        evidence[kind] = fn(c, c.choice(goods))
    evidence["dropped"] = c.choice([[], [], [
        {"kind": "scan", "code": "DIGEST_MISMATCH", "message": "the report is about another image"}]])
    doc = {
        "schema_version": "cortex.input/v1",
        "manifest": _manifest(c, c.choice(goods), name, version, image),
        "plugin": {"namespace": namespace, "name": name, "version": version,
                   "full_name": full_name,
                   "publisher": c.choice([namespace, namespace, namespace, "other", None])},
        "artifact": {"image": image, "digest": c.choice([DIGEST, DIGEST, DIGEST, None]) if not
                     pinned else DIGEST, "pinned": pinned},
        "evidence": evidence,
        "context": {"now": format_time(NOW), "cortex_version": c.choice(["0.1.0", "0.1.0", "1.2.0"]),
                    "operation": c.choice(["verify", "publish", "install", "run"]),
                    "registry": c.choice([None, "https://registry.cortexpersist.com",
                                          "https://registry.internal.acme.com"])},
    }
    # Drawn last: the rest of each document is drawn as before this piece existed.
    evidence["signer_continuity"] = _signer_continuity(c, c.choice(goods))
    return doc


def _signer_continuity(c: Chooser, good: bool) -> dict[str, Any]:
    """No comparison, the same signer (good), or a changed or dropped signer."""
    mode = c.choice(["absent", "same"] if good else ["absent", "same", "changed", "dropped", "odd"])
    if mode == "absent":
        return {"present": False}
    previous = {"identity": "https://github.com/acme/old/.github/workflows/release.yml@refs/heads/main",
                "issuer": "https://token.actions.githubusercontent.com",
                "trusted_root": c.choice([None, "production"])}
    facts: dict[str, Any] = {"present": True, "first_seen_signer": mode == "changed",
                             "signer_changed": mode == "changed", "signature_dropped": mode == "dropped",
                             "previous_version": c.choice([None, "0.9.0"]),
                             "previous_signer": c.choice([None, previous]), "source": "registry"}
    if mode == "odd":  # both at once, and a previous signer with text in odd places
        facts.update(signer_changed=True, signature_dropped=True,
                     previous_signer={"identity": c.choice(["", "x" * 300, "a\u0000b"]), "issuer": None})
    return facts


def degrade(doc: dict[str, Any], kind: str, c: Chooser) -> dict[str, Any]:
    """``doc`` with the piece ``kind`` replaced by a failing version of it (a new dict)."""
    out = copy.deepcopy(doc)
    if kind == "manifest":
        out["manifest"] = {"valid": False, "document": None,
                           "problems": ["manifest.yaml:1:1: invalid (fix: see lint)"]}
    elif kind == "signature":
        out["evidence"]["signature"] = c.choice([
            {"present": True, "verified": False, "error": "signature does not verify"},
            {**doc["evidence"]["signature"], "present": True, "verified": True,
             "identity": "https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main",
             "issuer": _GHA, "github": None, "subject_digest": DIGEST},
        ])
    elif kind == "scan":
        scan = dict(doc["evidence"]["scan"])
        if scan.get("present") and c.choice([True, False]):
            vulns = [*scan.get("vulnerabilities", []),
                     {"id": "CVE-2023-12345", "severity": "CRITICAL", "package": "openssl"}]
            counts = dict(scan.get("counts", {}))
            counts["CRITICAL"] = counts.get("CRITICAL", 0) + 1
            scan.update(vulnerabilities=vulns, counts=counts)
            out["evidence"]["scan"] = scan
        else:
            out["evidence"]["scan"] = {**scan, "present": True, "bound": True,
                                       "digest": DIGEST, "scanners": ["vuln", "secret"],
                                       "secrets": scan.get("secrets", 0) + 1}
    elif kind == "tests":
        t = doc["evidence"]["tests"]
        total = max(1, t.get("total", 0))
        out["evidence"]["tests"] = {**t, "present": True, "total": total,
                                    "failures": max(1, t.get("failures", 0)), "digest": DIGEST}
    elif kind == "review":
        # A core-team objection added to whatever was there (or an outsider's review alone).
        listed = [r for r in VOCAB.sorted_reviewers if r not in _UNLISTED_REVIEWERS]
        reviewer = c.choice([*listed, *_UNLISTED_REVIEWERS] if listed else _UNLISTED_REVIEWERS)
        added = _review_record(c, reviewer, c.choice(["rejected", "changes_requested"]))
        before = doc["evidence"]["review"].get("reviews", []) if reviewer in listed else []
        out["evidence"]["review"] = {**doc["evidence"]["review"], "present": True,
                                     "digest": DIGEST, "reviews": [*before, added]}
    elif kind == "usage":
        out["evidence"]["usage"] = {**doc["evidence"]["usage"], "present": True,
                                    "days_in_production": 0, "installations": 0,
                                    "first_production_use": format_time(NOW),
                                    "reporters": c.choice([[], [_reporter(c, "initech",
                                                                          continued=False)]])}
    elif kind == "promotion":
        # A listed reviewer's objection, or the pull request closed unmerged.
        out["evidence"]["promotion"] = {**_promotion(c, True), **c.choice([
            {"state": "closed", "merged": False},
            {"reviews": [{"login": "octo-reviewer", "state": "changes_requested"}]},
        ])}
    elif kind == "revocation":
        out["evidence"]["revocation"] = {"checked": True, "revoked": True, "reason": "compromised",
                                         "revoked_at": format_time(NOW),
                                         "fresh_as_of": format_time(NOW)}
    else:
        raise ValueError(f"unknown evidence kind {kind!r}")
    return out


def remove(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """``doc`` without the piece ``kind`` (its not-present default; revocation: not checked)."""
    out = copy.deepcopy(doc)
    if kind not in REMOVABLE:
        raise ValueError(f"unknown evidence kind {kind!r}")
    out["evidence"][kind] = {"checked": False} if kind == "revocation" else {"present": False}
    return out


# --------------------------------------------------------------------------- hypothesis


# The CORTEX platform version as installers and registries state it, or fail to: as generated,
# unknown (null), not a version, short forms, and each source.
_PLATFORM_VERSIONS = st.sampled_from([None, None, "dev", "", "8", "8.0", "8.0.0", "0.1.0-rc.1"])
_PLATFORM_SOURCES = st.sampled_from([None, "config", "env", "registry"])


@st.composite
def input_documents(draw: Any) -> dict[str, Any]:
    """Strategy: complete input documents as dicts (the platform version sometimes unknown,
    malformed or short, with any source)."""
    doc = build_document(HypothesisChooser(draw))
    if draw(st.booleans()):
        doc["context"]["cortex_version"] = draw(_PLATFORM_VERSIONS)
    doc["context"]["cortex_version_source"] = draw(_PLATFORM_SOURCES)
    return doc


@st.composite
def policy_inputs(draw: Any) -> PolicyInput:
    """Strategy: validated :class:`PolicyInput` values."""
    return PolicyInput.model_validate(build_document(HypothesisChooser(draw)))


@st.composite
def degraded_pairs(draw: Any) -> tuple[PolicyInput, PolicyInput, str]:
    """Strategy: ``(before, after, kind)`` where ``after`` has a failing piece ``kind``."""
    c = HypothesisChooser(draw)
    doc = build_document(c)
    kind = c.choice(DEGRADABLE)
    return (PolicyInput.model_validate(doc), PolicyInput.model_validate(degrade(doc, kind, c)),
            kind)


@st.composite
def reduced_pairs(draw: Any) -> tuple[PolicyInput, PolicyInput, str]:
    """Strategy: ``(before, after, kind)`` where ``after`` lacks the piece ``kind``."""
    c = HypothesisChooser(draw)
    doc = build_document(c)
    kind = c.choice(REMOVABLE)
    return PolicyInput.model_validate(doc), PolicyInput.model_validate(remove(doc, kind)), kind


def random_documents(n: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` documents from a seeded plain-random generator (same shapes as the strategies)."""
    c = RandomChooser(seed)
    for _ in range(n):
        yield build_document(c)
