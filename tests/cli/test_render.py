"""What the CLI renders (cli/_render.py) from hostile text: the human and GitHub formats show it
inert (no workflow command of the attacker's, no terminal control character), the machine
formats stay valid JSON."""

from __future__ import annotations

import json

import pytest

from cortex_trust.policy import Decision
from tests.support.hostile import HOSTILE, assert_inert

pytestmark = pytest.mark.security_review


def _hostile_decision(action: str = "allow") -> Decision:
    return Decision.from_policy_output({
        "tier": "community", "action": action,
        "reasons": [{"code": "COMMUNITY_OK", "message": f"reviewer {HOSTILE}"},
                    {"code": "MYORG_NO", "message": f"denied {HOSTILE}"}],
        "sandbox": {"enabled": True, "network": False, "filesystem": False,
                    "read_only_root": True, "cap_drop": [f"ALL{HOSTILE}"],
                    "no_new_privileges": True, "user": "1000:1000", "memory": "256m",
                    "cpus": 1, "pids_limit": 64},
        "next_tier": {"tier": "verified", "missing": [{"code": "REVIEW_MISSING",
                                                       "message": HOSTILE}]},
        "overridable": True,
    })


@pytest.mark.parametrize("fmt", ["text", "github", "markdown"])
def test_render_neutralises_control_characters(fmt: str) -> None:
    from cli._render import render_decision

    # A blocking decision: the github format annotates what blocks (a reason, a missing item).
    out = render_decision(_hostile_decision("block"), fmt, location="manifest.yaml")
    assert_inert(out, fmt="text" if fmt == "markdown" else fmt)
    assert "pwned" in out  # still shown, as inert text
    if fmt == "github":
        # Exactly our lines (reason, missing item, summary): the injected newlines added none.
        assert len(out.rstrip("\n").split("\n")) == 3


def test_junit_stays_valid_xml_with_hostile_text() -> None:
    import xml.etree.ElementTree as ET

    from cli._render import render_decision

    out = render_decision(_hostile_decision("block"), "junit")
    root = ET.fromstring(out)
    assert "pwned" in ET.tostring(root, encoding="unicode")
    for bad in ("\x1b", "\x07"):
        assert bad not in out


@pytest.mark.parametrize("fmt", ["json", "sarif", "codequality"])
def test_machine_formats_stay_valid_json_with_hostile_text(fmt: str) -> None:
    from cli._render import render_decision

    out = render_decision(_hostile_decision(), fmt)
    doc = json.dumps(json.loads(out))
    assert "pwned" in doc
    for bad in ("\x1b", "\x07", "\x9b", "\u2028", "\u202e"):
        assert bad not in out
