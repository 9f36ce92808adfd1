"""Hostile JSON (huge numbers, deep nesting, NaN) and crashes: exit codes as CI sees them.

`cortex plugin verify` and `cortex policy eval` run as real processes: an over-limit document is
an input error (exit 2, naming the file and the fix), and an unexpected exception exits 3 with
a short message, never 0 and never 1 (the "decision reached" code a CI gate may accept).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cortex_trust._json import MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]
FIX = Path(__file__).resolve().parents[1] / "fixtures"
CORTEX = str(Path(sys.executable).parent / "cortex")
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
IMAGE = f"127.0.0.1:5000/acme/hello@{DIGEST}"
VERIFY = [CORTEX, "plugin", "verify", str(FIX / "verify" / "manifest.yaml"), "--image", IMAGE,
          "--now", "2026-10-31T00:00:00Z", "--no-default-policies",
          "--policy-dir", str(FIX / "verify" / "policies")]
BIG_INT = "9" * 5001
DEEP = "[" * 100_000 + "]" * 100_000


def _run(*args: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, **(env or {})})


def _with_field(doc_path: Path, value: str) -> str:
    """The JSON document at ``doc_path`` with one more field whose raw value is ``value``."""
    text = json.dumps(json.loads(doc_path.read_text()))
    return text[:-1] + f', "x": {value}}}'


def _scan_report() -> Path:
    return FIX / "trivy" / "npm.json"


_DOCS = {"--scan": _scan_report(), "--review": FIX / "review" / "review-approved.json",
         "--usage": FIX / "review" / "usage-60days.json"}


@pytest.mark.parametrize("option", sorted(_DOCS))
@pytest.mark.parametrize(("value", "needle"), [
    (BIG_INT, "an integer of 5001 digits"),
    (DEEP, f"nested more than {MAX_DEPTH} levels"),
    ("NaN", "NaN is not a JSON number"),
])
def test_verify_refuses_hostile_evidence_with_exit_2(tmp_path: Path, option: str, value: str,
                                                     needle: str) -> None:
    hostile = tmp_path / "hostile.json"
    hostile.write_text(_with_field(_DOCS[option], value))
    r = _run(*VERIFY, option, str(hostile))
    assert r.returncode == 2, r.stderr
    assert str(hostile) in r.stderr and needle in r.stderr and "\n  fix: " in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize(("content", "needle"), [
    ('{"manifest": {"valid": true, "x": ' + BIG_INT + "}}", "an integer of 5001 digits"),
    (DEEP, f"nested more than {MAX_DEPTH} levels"),
    ('{"manifest": {"valid": Infinity}}', "Infinity is not a JSON number"),
])
def test_policy_eval_refuses_hostile_input_with_exit_2(tmp_path: Path, content: str,
                                                       needle: str) -> None:
    f = tmp_path / "input.json"
    f.write_text(content)
    for args, stdin, shown in (((str(f),), None, str(f)), (("-",), content, "<stdin>")):
        r = _run(CORTEX, "policy", "eval", "-i", *args, stdin=stdin)
        assert r.returncode == 2, r.stderr
        assert f"{shown}:1:" in r.stderr and needle in r.stderr and "\n  fix: " in r.stderr
        assert "Traceback" not in r.stderr


_CRASH = """
import sys
import cortex_trust.verify
def boom(*args, **kwargs):
    raise ZeroDivisionError("an unexpected bug")
cortex_trust.verify.gather_input = boom
sys.argv = ["cortex", *{args!r}]
from cli.main import main
main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_exits_3_never_0_or_1(debug: bool) -> None:
    # The real entry point in a real process: what the exit status of a crash is to CI.
    r = _run(sys.executable, "-c", _CRASH.format(args=VERIFY[1:]),
             env={"CORTEX_DEBUG": "1" if debug else "0"})
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "error: internal error: ZeroDivisionError: an unexpected bug" in r.stderr
    assert "CORTEX_DEBUG=1" in r.stderr
    assert ("Traceback" in r.stderr) is debug


def test_usage_errors_still_exit_2() -> None:
    for args in ((), ("no-such-command",), ("policy", "eval"), ("policy", "eval", "--bogus")):
        r = _run(CORTEX, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert _run(CORTEX, "--help").returncode == 0
