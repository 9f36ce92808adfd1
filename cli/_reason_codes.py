"""The documentation of each reason code, for machine outputs that describe their rules (SARIF).

The one home of what a reason code means is the tables of docs/policy-contract.md §4; the
package carries a copy of them (``reason_codes.json`` beside this module, code -> its group and
meaning), pinned equal to the document by a test. The group is the table a code is listed in:
``tier``, ``check`` (a failed check: also a missing item of the tier it belongs to), ``blocker``,
``note``, ``organization`` (the example organization's), ``reserved`` (the fail-closed block).
After editing the tables, rewrite the copy::

    python -m cli._reason_codes --update

A code the table does not list (an organization's own) is described as such; every code links to
its section of the contract (:data:`HELP_URI`).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

__all__ = ["GROUPS", "HELP_URI", "ORG_HELP_URI", "describe", "group_of", "parse_contract"]

_COPY = Path(__file__).with_name("reason_codes.json")
_DOC = Path(__file__).resolve().parents[1] / "docs" / "policy-contract.md"
_DOCS = "https://github.com/cortex-dev/cortex-trust/blob/main/docs/policy-contract.md"
#: Where every documented reason code is explained.
HELP_URI = f"{_DOCS}#4-reason-codes"
#: Where an organization's own codes come from (extension points).
ORG_HELP_URI = f"{_DOCS}#6-extension-points-how-an-organization-customizes"
_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]{1,63})` \| (.+?) \|\s*$")
#: The group of each table of §4, by how the sentence introducing it starts.
GROUPS = {"Tier reasons": "tier", "Failed checks": "check", "Blockers": "blocker",
          "Notes and warnings": "note", "The example organization": "organization", "Reserved": "reserved"}


def parse_contract(text: str) -> dict[str, dict[str, str]]:
    """Code -> ``{"group", "meaning"}``, from the tables of section 4 of the policy contract's
    Markdown. Raises ``ValueError`` for a table without a known introduction."""
    out: dict[str, dict[str, str]] = {}
    in_section, group = False, None
    for line in text.splitlines():
        if line.startswith("## "):
            in_section = line.startswith("## 4. Reason codes")
            continue
        if not in_section:
            continue
        if line and not line.startswith("|"):
            group = next((g for intro, g in GROUPS.items() if line.startswith(intro)), None)
        m = _ROW.match(line)
        if m:
            if group is None:
                raise ValueError(f"reason code {m.group(1)} is in a table without a known introduction")
            out[m.group(1)] = {"group": group, "meaning": m.group(2).strip()}
    return out


@functools.cache
def _catalogue() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(_COPY.read_text(encoding="utf-8"))
    return data


def group_of(code: str) -> str | None:
    """The group of a documented code (see the module's docstring), ``None`` for another."""
    entry = _catalogue().get(code)
    return entry["group"] if entry else None


def describe(code: str) -> tuple[str, str, str]:
    """``(short, full, help_uri)`` for ``code``: the first sentence of its documented meaning,
    the whole meaning, and the link to it; a code the contract does not document is described
    as the organization's own."""
    entry = _catalogue().get(code)
    if entry is None:
        return (f"{code} (a reason code of the organization's policy)",
                f"{code}: a reason code of the organization's own policy; cortex-trust does not "
                "document it. The result's message says what the policy found.", ORG_HELP_URI)
    plain = entry["meaning"].replace("`", "")
    short = re.split(r"(?<=[.:;])\s", plain, maxsplit=1)[0].rstrip(".:;")
    return short, plain, HELP_URI


if __name__ == "__main__":  # pragma: no cover - a maintenance entry point
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m cli._reason_codes --update")
    _COPY.write_text(json.dumps(parse_contract(_DOC.read_text(encoding="utf-8")), indent=2,
                                sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {_COPY}")
