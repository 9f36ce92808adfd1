"""`cortex manifest init [DIR]`: what it writes lints clean, it never overwrites without --force,
odd directory names give valid plugin names, and its Dockerfile is the README's example."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.manifest_init import PLACEHOLDER_AUTHOR
from cortex_trust.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugins" / "hello"
FILES = ("manifest.yaml", "Dockerfile", "server.sh")


@pytest.fixture(autouse=True)
def _no_git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """git sees no user.name/user.email unless a test configures them: the machine's own
    configuration never leaks into what is asserted."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _lint_ok(manifest: Path) -> str:
    result = run("manifest", "lint", str(manifest))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _label(dockerfile: Path, key: str) -> str:
    found = re.search(rf'io\.cortex\.plugin\.{key}="([^"]*)"', dockerfile.read_text())
    assert found is not None
    return found.group(1)


def test_init_writes_a_plugin_that_lints_clean(tmp_path: Path) -> None:
    target = tmp_path / "weather"
    result = run("manifest", "init", str(target))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)
    assert _lint_ok(target / "manifest.yaml") == f"ok: {target / 'manifest.yaml'} (weather@0.1.0)\n"
    m = load_manifest(target / "manifest.yaml")
    assert (m.version, m.license, m.runtime.image, m.author) == (
        "0.1.0", "Apache-2.0", "registry.example.org/weather:0.1.0", PLACEHOLDER_AUTHOR)
    assert (m.trust.sandbox, m.trust.network, m.trust.filesystem) == (True, False, False)
    # The image's labels are the manifest's name and version: the runtime refuses anything else.
    assert (_label(target / "Dockerfile", "name"), _label(target / "Dockerfile", "version")) == ("weather", "0.1.0")
    out = result.stdout
    assert "note: author is the placeholder" in out
    assert f"cortex manifest lint {target / 'manifest.yaml'}" in out
    assert "podman build -t REGISTRY/weather:0.1.0" in out


def test_options_reach_the_manifest_and_the_labels(tmp_path: Path) -> None:
    result = run("manifest", "init", str(tmp_path / "p"), "--name", "tide-tables", "--version", "2.0.0-rc.1",
                 "--description", "Tide tables: high and low water.", "--author", "Ada Lovelace <ada@example.org>",
                 "--license", "MIT OR Apache-2.0", "--image", "ghcr.io/acme/tides:2.0.0-rc.1",
                 "--min-cortex-version", "1.2.0")
    assert result.exit_code == 0, result.stderr
    m = load_manifest(tmp_path / "p" / "manifest.yaml")
    assert (m.name, m.version, m.description, m.author, m.license, m.runtime.image, m.trust.min_cortex_version) == (
        "tide-tables", "2.0.0-rc.1", "Tide tables: high and low water.", "Ada Lovelace <ada@example.org>",
        "MIT OR Apache-2.0", "ghcr.io/acme/tides:2.0.0-rc.1", "1.2.0")
    assert _label(tmp_path / "p" / "Dockerfile", "version") == "2.0.0-rc.1"
    assert "placeholder" not in result.stdout


def test_the_author_comes_from_git_when_it_has_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Grace Hopper\n\temail = grace@example.org\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    result = run("manifest", "init", str(tmp_path / "a"))
    assert result.exit_code == 0, result.stderr
    assert load_manifest(tmp_path / "a" / "manifest.yaml").author == "Grace Hopper <grace@example.org>"
    assert "placeholder" not in result.stdout
    # An identity git has that is not `Name <email>` falls back to the placeholder, and says so.
    config.write_text("[user]\n\tname = grace\n\temail = not-an-address\n")
    result = run("manifest", "init", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr
    assert load_manifest(tmp_path / "b" / "manifest.yaml").author == PLACEHOLDER_AUTHOR
    assert "note: git's user.name/user.email (grace <not-an-address>) is not `Name <email>`" in result.stdout


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    mine = "name: mine\n"
    (tmp_path / "manifest.yaml").write_text(mine)
    result = run("manifest", "init", str(tmp_path))
    assert result.exit_code == 2
    assert "already has manifest.yaml; init never overwrites files (nothing was written)" in result.stderr
    assert "--force" in result.stderr
    # Nothing at all was written: not the manifest, not the files that did not exist.
    assert (tmp_path / "manifest.yaml").read_text() == mine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]
    # A link in place of a file counts as existing, and --force replaces the link, not its target.
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / "server.sh").symlink_to(target)
    assert run("manifest", "init", str(tmp_path)).exit_code == 2
    result = run("manifest", "init", str(tmp_path), "--force")
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == "keep\n"
    assert not (tmp_path / "server.sh").is_symlink()
    _lint_ok(tmp_path / "manifest.yaml")


@pytest.mark.parametrize(("dirname", "name"), [
    ("My Weather_Plugin", "my-weather-plugin"),
    ("--Café  Ünïcode--", "cafe-unicode"),
    ("tool.v2", "tool-v2"),
    ("42", "42"),
    ("a" * 70 + "-b", "a" * 64),
    ("x" * 63 + ".y", "x" * 63),
])
def test_odd_directory_names_give_valid_names(tmp_path: Path, dirname: str, name: str) -> None:
    result = run("manifest", "init", str(tmp_path / dirname))
    assert result.exit_code == 0, result.stderr
    assert load_manifest(tmp_path / dirname / "manifest.yaml").name == name
    _lint_ok(tmp_path / dirname / "manifest.yaml")


@pytest.mark.parametrize("dirname", ["___", "日本語"])
def test_a_directory_name_with_nothing_usable_asks_for_a_name(tmp_path: Path, dirname: str) -> None:
    result = run("manifest", "init", str(tmp_path / dirname))
    assert result.exit_code == 2
    assert "leaves no valid plugin name" in result.stderr and "--name" in result.stderr
    assert not (tmp_path / dirname).exists()


def test_a_value_that_would_not_lint_is_refused_naming_the_option(tmp_path: Path) -> None:
    result = run("manifest", "init", str(tmp_path / "p"), "--version", "1.0", "--license", "Apache 2")
    assert result.exit_code == 2
    assert "error: --version: version: '1.0' is not MAJOR.MINOR.PATCH" in result.stderr
    assert "fix: write all three parts: version: \"1.0.0\"" in result.stderr
    assert "error: --license:" in result.stderr
    assert not (tmp_path / "p").exists()
    result = run("manifest", "init", str(tmp_path / "q"), "--name", "Bad_Name")
    assert result.exit_code == 2 and "error: --name:" in result.stderr


def test_the_scaffold_is_the_readme_example(tmp_path: Path) -> None:
    # examples/plugins/hello's Dockerfile and server.sh (tests/runtime/test_plugin_image.py builds and
    # runs them) are what init writes, the label line naming the new plugin; the manifest
    # declares what server.sh serves.
    assert run("manifest", "init", str(tmp_path / "hello")).exit_code == 0
    assert run("manifest", "init", str(tmp_path / "other"), "--name", "tides", "--version", "1.2.3").exit_code == 0
    for name in ("Dockerfile", "server.sh"):
        assert (tmp_path / "hello" / name).read_bytes() == (EXAMPLE / name).read_bytes(), name
    assert (tmp_path / "other" / "server.sh").read_bytes() == (EXAMPLE / "server.sh").read_bytes()
    example, other = ((d / "Dockerfile").read_text().splitlines() for d in (EXAMPLE, tmp_path / "other"))
    assert [(a, b) for a, b in zip(example, other, strict=True) if a != b] == [
        ('LABEL io.cortex.plugin.name="hello" io.cortex.plugin.version="0.1.0"',
         'LABEL io.cortex.plugin.name="tides" io.cortex.plugin.version="1.2.3"')]
    declared = {(c.name, c.method, c.endpoint) for c in load_manifest(EXAMPLE / "manifest.yaml").capabilities}
    assert declared == {(c.name, c.method, c.endpoint)
                        for c in load_manifest(tmp_path / "other" / "manifest.yaml").capabilities}


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_readme_new_user_path_runs(tmp_path: Path) -> None:
    """The `cortex manifest ...` commands of the README's "Writing a plugin image" walk-through,
    run as a new user would (real processes, in an empty directory), each exiting 0."""
    block = _readme_section("Writing a plugin image").split("```")[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("cortex manifest ")]
    assert [c.split()[:3] for c in commands] == [["cortex", "manifest", "init"], ["cortex", "manifest", "lint"]]
    cortex = str(Path(sys.executable).parent / "cortex")
    for command in commands:
        done = subprocess.run([cortex, *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert done.stdout.startswith("ok: ")
