"""Errors are rendered in one place (``cli._errors``) and options are declared once (``cli._options``).

Driven through the Typer app as tests drive it (``CliRunner``, without ``cli.main.main``): a
library error raised by any command still becomes ``error: …``/``fix: …`` and its exit code, as
for the console script; every ``--format`` taking text or json refuses another value alike.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli._errors import register_secret, report_internal_error, report_library_error
from cli.main import app
from cortex_trust.errors import EvidenceError, InputError
from tests.support.hostile import HOSTILE, assert_inert

FIX = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = FIX / "verify" / "manifest.yaml"
IMAGE = "ghcr.io/acme/hello@sha256:" + "a" * 64


def _cortex(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("command", [
    ("manifest", "lint", str(MANIFEST)),
    ("policy", "eval", "--input", "input.json"),
    ("policy", "test"),
    ("plugin", "install", "acme/hello"),
    ("plugin", "update"),
    ("plugin", "list"),
    ("plugin", "info", "acme/hello"),
    ("plugin", "search"),
    ("config", "list"),
    ("registry", "token", "list"),
])
def test_every_text_or_json_format_refuses_another_format_alike(command: tuple[str, ...]) -> None:
    r = _cortex(*command, "--format", "xml")
    assert r.exit_code == 2
    assert r.stderr == ("error: --format 'xml' is not text or json\n"
                        "  fix: use --format text or --format json\n")
    assert r.stdout == ""


def test_verify_format_refuses_another_format() -> None:
    r = _cortex("plugin", "verify", str(MANIFEST), "--image", IMAGE, "--format", "xml")
    assert r.exit_code == 2
    assert r.stderr == ("error: --format 'xml' is not one of text, json, sarif, github, junit, "
                        "codequality, markdown\n"
                        "  fix: use --format text, json, sarif, github, junit, codequality or markdown\n")


def test_a_library_error_is_rendered_with_its_exit_code_whichever_command_raised_it(
        tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{")
    r = _cortex("config", "get", "registry", env={"CORTEX_CONFIG": str(config)})
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: the configuration {config} is not valid JSON")
    assert "\n  fix: " in r.stderr

    r = _cortex("policy", "test", "--data", str(tmp_path / "missing.yaml"))
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "\n  fix: " in r.stderr

    # Nothing listens on port 9 of this machine: the registry cannot be reached (exit 3).
    r = _cortex("plugin", "publish", str(MANIFEST), "--image", IMAGE, "--bundle", str(MANIFEST),
                "--registry", "http://127.0.0.1:9", "--token-env", "T", env={"T": "ctr_x"})
    assert r.exit_code == 3
    assert r.stderr.startswith("error: cannot reach the registry http://127.0.0.1:9")


def test_registered_secrets_never_appear_in_an_error_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = "ctr_" + secrets.token_hex(16)
    register_secret(secret)
    with pytest.raises(SystemExit) as exited:
        report_library_error(InputError(f"refused {secret}", advice=f"do not send {secret}"))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert secret not in err
    assert err == "error: refused ***\n  fix: do not send ***\n"

    with pytest.raises(SystemExit) as exited:
        report_internal_error(RuntimeError(f"crashed with {secret}"))
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert secret not in err and "RuntimeError: crashed with ***" in err


@pytest.mark.security_review
def test_error_messages_are_neutralised(capsys: pytest.CaptureFixture[str]) -> None:
    from cli._errors import fail, report_library_error

    with pytest.raises(SystemExit) as exc:
        fail(f"bad {HOSTILE}", advice=HOSTILE)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert_inert(err)
    assert err.count("\n") == 2  # the error line and the fix line, nothing injected
    with pytest.raises(SystemExit):
        report_library_error(EvidenceError(f"review {HOSTILE}", advice="x"))
    assert_inert(capsys.readouterr().err)
