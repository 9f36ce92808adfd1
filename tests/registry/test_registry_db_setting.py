"""Which database a `cortex registry` command uses: ``--db``, else ``$CORTEX_REGISTRY_DB``, else
the configuration's ``registry-db``, else ``./cortex-registry.db``; and what the configuration
refuses to store (a relative SQLite path, a password).

Each case creates a token without naming the database, then looks for it in each candidate.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.support.served_registry import CORTEX


def _cli(*args: str, env: dict[str, str | None]) -> Result:
    from cli.main import app

    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The four candidate databases, the configuration file, and the working directory."""
    monkeypatch.chdir(tmp_path)
    return {"flag": tmp_path / "flag.db", "env": tmp_path / "env.db",
            "config": tmp_path / "config.db", "default": tmp_path / "cortex-registry.db",
            "config_file": tmp_path / "cortex" / "config.json"}


def _holders(where: dict[str, Path], env: dict[str, str | None]) -> dict[str, list[str]]:
    """The token holders found in each candidate database that exists."""
    found = {}
    for key in ("flag", "env", "config", "default"):
        if where[key].exists():
            r = _cli("registry", "token", "list", "--db", f"sqlite:///{where[key]}",
                     "--format", "json", env=env)
            assert r.exit_code == 0, r.output
            found[key] = sorted(t["holder"] for t in json.loads(r.stdout))
    return found


def _create(holder: str, *extra: str, env: dict[str, str | None]) -> Result:
    return _cli("registry", "token", "create", "--namespace", "acme", "--role", "installation",
                "--holder", holder, *extra, env=env)


def test_flag_beats_environment_beats_configuration_beats_default(where: dict[str, Path]) -> None:
    env: dict[str, str | None] = {"CORTEX_CONFIG": str(where["config_file"]),
                                  "CORTEX_REGISTRY_DB": None}
    # Nothing configured: ./cortex-registry.db in the working directory.
    assert _create("default", env=env).exit_code == 0

    r = _cli("config", "set", "registry-db", f"sqlite:///{where['config']}", env=env)
    assert r.exit_code == 0, r.output
    assert _create("config", env=env).exit_code == 0

    env["CORTEX_REGISTRY_DB"] = f"sqlite:///{where['env']}"
    assert _create("env", env=env).exit_code == 0
    assert _create("flag", "--db", f"sqlite:///{where['flag']}", env=env).exit_code == 0

    # An empty variable is unset, not an empty URL.
    env["CORTEX_REGISTRY_DB"] = ""
    assert _create("config-again", env=env).exit_code == 0

    r = _cli("config", "get", "registry-db", env=env)
    assert r.stdout.strip() == f"sqlite:///{where['config']}"
    assert f"registry-db = sqlite:///{where['config']}" in _cli("config", "list", env=env).stdout
    assert _cli("config", "unset", "registry-db", env=env).exit_code == 0
    assert _create("default-again", env=env).exit_code == 0

    assert _holders(where, env) == {"default": ["default", "default-again"],
                                    "config": ["config", "config-again"], "env": ["env"],
                                    "flag": ["flag"]}


def test_a_broken_configuration_is_read_only_when_it_decides(where: dict[str, Path]) -> None:
    where["config_file"].parent.mkdir(mode=0o700)
    where["config_file"].write_text("{not json")
    where["config_file"].chmod(0o600)
    env: dict[str, str | None] = {"CORTEX_CONFIG": str(where["config_file"]),
                                  "CORTEX_REGISTRY_DB": None}
    # --help and an explicit --db never read the configuration.
    assert _cli("registry", "migrate", "--help", env=env).exit_code == 0
    assert _cli("registry", "migrate", "--db", f"sqlite:///{where['flag']}", env=env).exit_code == 0
    assert where["flag"].exists()
    # Without --db or the variable the configuration decides: its error, exit 2, no database.
    proc = subprocess.run([CORTEX, "registry", "migrate"], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**{k: v for k, v in os.environ.items() if k != "CORTEX_REGISTRY_DB"},
                               "CORTEX_CONFIG": str(where["config_file"])})
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr, proc.stderr
    assert not where["default"].exists()


@pytest.mark.parametrize(("value", "why"), [
    ("sqlite:///relative.db", "use an absolute one, e.g. sqlite:////"),
    ("postgresql://cortex:s3cret@db.internal:5432/registry", "PGPASSWORD"),
    ("mysql://db.internal/registry", "is not a registry database URL"),
    ("sqlite:////tmp/a\x1b[2Jb.db", "is not a registry database URL"),
])
def test_the_configuration_refuses_what_it_should_not_keep(where: dict[str, Path], value: str,
                                                           why: str) -> None:
    env: dict[str, str | None] = {"CORTEX_CONFIG": str(where["config_file"])}
    r = _cli("config", "set", "registry-db", value, env=env)
    assert r.exit_code == 2 and why in r.stderr
    assert "s3cret" not in r.output
    assert not where["config_file"].exists()


def test_a_postgresql_url_without_password_is_kept(where: dict[str, Path]) -> None:
    env: dict[str, str | None] = {"CORTEX_CONFIG": str(where["config_file"])}
    url = "postgresql://cortex@db.internal:5432/registry"
    assert _cli("config", "set", "registry-db", url, env=env).exit_code == 0
    assert _cli("config", "get", "registry-db", env=env).stdout.strip() == url
