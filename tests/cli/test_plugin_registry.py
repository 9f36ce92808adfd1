"""``cortex plugin yank|unyank|revoke|review``: what the commands refuse before anything is sent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize("ref", ["acme/hello@1.0.0\n", "-acme/hello@1.0.0", "acme/hello-@1.0.0",
                                 "Acme/hello@1.0.0", "acme/hello@1.0.0@2", "acme/hello"])
def test_a_version_outside_the_slug_syntax_is_refused_before_anything_is_sent(
        ref: str, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: reaching it would exit 3
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"CORTEX_REGISTRY_TOKEN": "t", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "CORTEX_CONFIG": str(tmp_path / "config.toml")}
    r = CliRunner().invoke(app, ["plugin", "yank", "--reason", "x", "--registry", dead, "--", ref],
                           env=env, catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "is not NAMESPACE/NAME@VERSION" in r.output
