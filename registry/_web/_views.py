"""What the catalogue's pages show, as plain values built from the stored read documents.

Every function here only *words* facts already stored: the tier, action, reasons, next tier
and sandbox are the policy's decision as the registry recorded it (no verdict is computed here),
the evidence cards are the facts the decision was made on. Values that a publisher controls stay
plain strings; the templates escape them (Jinja2 autoescaping). A URL becomes a link only
through :func:`safe_link`: ``https:`` to a host of :data:`LINK_HOSTS`, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ACTIONS",
    "LINK_HOSTS",
    "TIERS",
    "Badge",
    "advisory_link",
    "badge",
    "evidence_cards",
    "install_command",
    "needs_in_words",
    "safe_link",
    "sandbox_in_words",
]

#: Hosts whose ``https:`` URLs are shown as links (signer identities, advisories); any other
#: URL is shown as text.
LINK_HOSTS = frozenset({"github.com", "gitlab.com", "nvd.nist.gov", "osv.dev",
                        "token.actions.githubusercontent.com"})


@dataclass(frozen=True)
class Badge:
    """A tier as shown: its symbol, its word (the badge never relies on colour alone) and the
    CSS class that colours it."""

    symbol: str
    word: str
    css: str
    meaning: str


#: The specification's trust levels, lowest first.
TIERS: Mapping[str, Badge] = {
    "verified": Badge("🟢", "Verified", "tier-verified",
                      "reviewed by the core team, signed by a trusted identity and used in production"),
    "community": Badge("🔵", "Community", "tier-community",
                       "scanned, tested and with a valid manifest"),
    "experimental": Badge("🟡", "Experimental", "tier-experimental", "a valid manifest, little else"),
    "untrusted": Badge("🔴", "Untrusted", "tier-untrusted", "nothing validated"),
}
_UNKNOWN = Badge("⚪", "Unknown", "tier-untrusted", "no decision recorded")

#: What ``cortex plugin install`` does with each action.
ACTIONS: Mapping[str, str] = {
    "allow": "installs automatically",
    "notice": "installs and shows a notice",
    "warn": "asks before installing",
    "block": "refuses to install",
}


def badge(tier: str | None) -> Badge:
    """The badge of a stored tier (an unknown or missing tier shows as "Unknown")."""
    return TIERS.get(tier or "", _UNKNOWN)


def sandbox_in_words(sandbox: Mapping[str, Any] | None) -> str:
    """The sandbox a decision grants, in words: ``no network, no host files`` and so on."""
    if not sandbox:
        return "no sandbox granted (the plugin does not run)"
    if not sandbox.get("enabled", True):
        return "runs outside the sandbox"
    net = "network" if sandbox.get("network") else "no network"
    files = "host files" if sandbox.get("filesystem") else "no host files"
    return f"{net}, {files}"


def needs_in_words(trust: Mapping[str, Any] | None) -> str:
    """What a manifest asks for (``trust.network``/``filesystem``), in words. Asking is not
    getting: the decision's sandbox says what is granted."""
    trust = trust or {}
    asks = [w for w, on in (("network", trust.get("network")), ("host files", trust.get("filesystem"))) if on]
    return "asks for " + " and ".join(asks) if asks else "asks for no network and no host files"


def install_command(namespace: str, name: str, version: str | None = None) -> str:
    """The command that installs the plugin (pinned to ``version`` when given)."""
    return f"cortex plugin install {namespace}/{name}" + (f"@{version}" if version else "")


def safe_link(url: object) -> str | None:
    """``url`` if it may be a link: an ``https:`` URL to a host of :data:`LINK_HOSTS`, without
    credentials, control characters or spaces; otherwise None (shown as text)."""
    if not isinstance(url, str) or len(url) > 2048 or not url.startswith("https://"):
        return None
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return None
    return url if parts.hostname in LINK_HOSTS else None


_CVE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,10}\Z")
_GHSA = re.compile(r"^GHSA(-[23456789cfghjmpqrvwx]{4}){3}\Z")


def advisory_link(advisory_id: object) -> str | None:
    """A link for a vulnerability id of a known form (CVE, GHSA); None for anything else."""
    if not isinstance(advisory_id, str):
        return None
    if _CVE.match(advisory_id):
        return f"https://nvd.nist.gov/vuln/detail/{advisory_id}"
    if _GHSA.match(advisory_id):
        return f"https://github.com/advisories/{advisory_id}"
    return None


_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def _scan_card(scan: Mapping[str, Any], digest: str, allowlisted: frozenset[str]) -> dict[str, Any]:
    counts = scan.get("counts") or {}
    vulns = [{"id": v.get("id", ""), "severity": v.get("severity", ""), "package": v.get("package", ""),
              "installed": v.get("installed_version", ""), "fixed": v.get("fixed_version", ""),
              "link": advisory_link(v.get("id")), "allowlisted": v.get("id") in allowlisted}
             for v in scan.get("vulnerabilities") or () if isinstance(v, Mapping)]
    return {"present": bool(scan.get("present")),
            "bound": bool(scan.get("bound")) and scan.get("digest") == digest,
            "origin": scan.get("origin"), "scanners": list(scan.get("scanners") or ()),
            "produced_by": scan.get("produced_by"), "created_at": scan.get("created_at"),
            "counts": [(s, counts.get(s, 0)) for s in _SEVERITIES if s in counts],
            "vulnerabilities": vulns, "secrets": scan.get("secrets", 0),
            "misconfigurations": scan.get("misconfigurations", 0), "error": scan.get("error"),
            "attester": scan.get("attester")}


def evidence_cards(evidence: Mapping[str, Any] | None, digest: str, *,
                   decision: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence the decision was made on, one card each: signature, scan, tests, reviews,
    production use. Missing facts show as "none" (unscanned is never clean). A listed
    vulnerability is marked allowlisted when the ``decision`` names its id in
    ``allowlisted_vulnerabilities`` (the policy's word; none when it names none)."""
    named = decision.get("allowlisted_vulnerabilities")
    allowlisted = frozenset(i for i in named if isinstance(i, str)) if isinstance(named, list) else frozenset()
    ev = evidence or {}
    sig = ev.get("signature") or {}
    tests = ev.get("tests") or {}
    review = ev.get("review") or {}
    usage = ev.get("usage") or {}
    return {
        "signature": {"present": bool(sig.get("present")), "verified": bool(sig.get("verified")),
                      "identity": sig.get("identity"), "identity_link": safe_link(sig.get("identity")),
                      "issuer": sig.get("issuer"), "trusted_root": sig.get("trusted_root"),
                      "when": sig.get("integrated_time"), "error": sig.get("error")},
        "scan": _scan_card(ev.get("scan") or {}, digest, allowlisted),
        "tests": {"present": bool(tests.get("present")), "total": tests.get("total", 0),
                  "failures": tests.get("failures", 0), "errors": tests.get("errors", 0),
                  "skipped": tests.get("skipped", 0)},
        "reviews": [{"reviewer": r.get("reviewer"), "verdict": r.get("verdict"), "at": r.get("at")}
                    for r in review.get("reviews") or () if isinstance(r, Mapping)],
        "usage": {"present": bool(usage.get("present")), "days": usage.get("days_in_production", 0),
                  "active_days": usage.get("active_days", 0),
                  "installations": usage.get("installations", 0),
                  "organizations": usage.get("organizations", 0),
                  "first": usage.get("first_production_use")},
    }
