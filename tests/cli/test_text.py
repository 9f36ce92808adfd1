"""Text output for people, through the `cortex` command.

* `plugin search` shows what the sources that answered found and warns about the others
  (exit 0), and exits 3 only when no source answered; its table has a header and a version
  column, and a description cut to fit never ends inside a digest.
* `plugin list` has a header and a STATE column (running, revoked, yanked, blocked now) decided
  from local state alone: the registries are down while it runs.
* `plugin info` (and `remove`) with a short name names the full names it may mean.
* `--version`; colour and symbols on a terminal (a real pty, or FORCE_COLOR), never when piped
  or with NO_COLOR; digests short on stdout, full in JSON; a message the policy quotes is never
  cut inside a digest.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from cortex_trust._text import clip
from cortex_trust.ids import DIGEST
from cortex_trust.install import InstallRecord, InstallStore, load_config, save_config
from tests.cli.test_verify import DIGEST as IMAGE_DIGEST
from tests.cli.test_verify import JUNIT, OTHER, bound_report, verify
from tests.engine.test_embedded import make_input
from tests.support.federation import Federation, manifest_text
from tests.support.github_wire_server import FakeGitHub, repo_item, serve

CORTEX = str(Path(sys.executable).parent / "cortex")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHORT = re.compile(r"sha256:[0-9a-f]{12}…")


def cortex(fed: Federation, *args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=fed.env(**env), catch_exceptions=False)


def rows(stdout: str) -> list[list[str]]:
    """The cells of a table (two or more spaces apart), header first."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def only_whole_digests(text: str) -> bool:
    """Every ``sha256:`` in ``text`` starts a whole digest or a shortened one (``…``)."""
    return all(re.match(r"sha256:(?:[0-9a-f]{64}(?![0-9a-f])|[0-9a-f]{12}…)", text[m.start():])
               for m in re.finditer("sha256:", text))


# --------------------------------------------------------------------------------- search


def use_github(fed: Federation, url: str) -> None:
    save_config(fed.config_path, load_config(fed.config_path).model_copy(update={"github_api": url}))


def github_down() -> str:
    server, url = serve(FakeGitHub())
    server.shutdown()
    server.server_close()  # nothing listens there any more: connection refused
    return url


def test_search_shows_what_answered_and_warns_about_what_did_not(federation: Federation) -> None:
    fed = federation
    fed.public.publish(fed.sigstore, "tools", "hello", "1.2.0")
    use_github(fed, github_down())

    r = cortex(fed, "plugin", "search", "hello")
    assert r.exit_code == 0, r.output
    table = rows(r.stdout)
    assert table[0] == ["NAME", "VERSION", "TIER", "SOURCE", "DESCRIPTION"]
    assert ["tools/hello", "1.2.0", "experimental", "registry:default",
            "A test plugin called hello."] in table
    assert "warning: GitHub (http://127.0.0.1:" in r.stderr and "did not answer" in r.stderr
    assert "its results are missing" in r.stderr
    assert "acme-internal" not in r.stderr  # the private registry answered (no hits)

    r = cortex(fed, "plugin", "search", "hello", "--format", "json")
    assert r.exit_code == 0, r.output
    assert [x["name"] for x in json.loads(r.stdout)] == ["tools/hello"]
    assert "did not answer" in r.stderr

    # GitHub answers, both registries are down: GitHub's hits, a warning for each registry.
    fake = FakeGitHub(repos=[repo_item("octo", "hello-plugin", description="Says hello")])
    server, url = serve(fake)
    try:
        use_github(fed, url)
        fed.public.stop()
        fed.private.stop()
        r = cortex(fed, "plugin", "search", "hello")
        assert r.exit_code == 0, r.output
        assert ["github:octo/hello-plugin", "-", "-", "github", "Says hello"] in rows(r.stdout)
        assert r.stderr.count("did not answer") == 2
        assert "registry default" in r.stderr and "registry acme" in r.stderr

        # Rate limited: GitHub answered "not now"; the warning carries the wait and the fix.
        fake.rate_limited = "secondary"
        fed.public.start()
        r = cortex(fed, "plugin", "search", "hello")
        assert r.exit_code == 0, r.output
        assert "tools/hello" in r.stdout and "rate limit" in r.stderr
        assert "fix: retry in 60 s, or set GITHUB_TOKEN" in r.stderr
        fed.public.stop()
    finally:
        server.shutdown()
        server.server_close()

    # Nothing answered: exit 3, each source named.
    use_github(fed, github_down())
    r = cortex(fed, "plugin", "search", "hello")
    assert r.exit_code == 3, r.output
    assert r.stdout == ""
    assert r.stderr.count("did not answer") == 3 and "error: no source answered" in r.stderr


def test_search_description_is_cut_before_a_digest(federation: Federation) -> None:
    fed = federation
    digest = "sha256:" + "0123456789abcdef" * 4
    description = "Mirror of the upstream image " + "x" * 31 + " " + digest
    fed.public.publish(fed.sigstore, "tools", "mirror", "1.0.0", manifest=manifest_text(
        "mirror", "1.0.0").replace("A test plugin called mirror.", description))
    r = cortex(fed, "plugin", "search", "mirror", "--source", "registry")
    assert r.exit_code == 0, r.output
    [_, row] = rows(r.stdout)
    assert row[-1] == description[:description.index(digest)] + "…"
    r = cortex(fed, "plugin", "search", "mirror", "--source", "registry", "--format", "json")
    assert json.loads(r.stdout)[0]["description"] == description


# ----------------------------------------------------------------------------------- list


def test_list_shows_state_from_local_state_only(federation: Federation, tmp_path: Path) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    hello = fed.public.publish(fed.sigstore, "tools", "hello", "1.0.0")
    fed.public.publish(fed.sigstore, "tools", "gone", "1.0.0")
    for name in ("acme/tool", "tools/hello", "tools/gone"):
        r = cortex(fed, "plugin", "install", name, "--yes")
        assert r.exit_code == 0, r.output
        assert f"installed {name}@1.0.0 (sha256:" in r.stdout

    r = cortex(fed, "plugin", "list")
    assert r.exit_code == 0, r.output
    table = rows(r.stdout)
    assert table[0] == ["NAME", "VERSION", "TIER", "ACTION", "STATE", "REGISTRY", "DIGEST"]
    assert table[1:] == [
        ["acme/tool", "1.0.0", "experimental", "warn", "ok", "acme",
         SHORT.findall(r.stdout)[0]],
        ["tools/gone", "1.0.0", "experimental", "warn", "ok", "default", table[2][6]],
        ["tools/hello", "1.0.0", "experimental", "warn", "ok", "default",
         f"{hello[:19]}…"]]
    assert hello not in r.stdout  # short in text ...
    r = cortex(fed, "plugin", "list", "--format", "json")
    plugins = {p["name"]: p for p in json.loads(r.stdout)["plugins"]}
    assert plugins["tools/hello"]["digest"] == hello  # ... full in JSON

    # The registries change their minds; `sync` (a command that asks them) learns it.
    with fed.private.client(fed.private.token("acme")) as c:
        c.yank("acme", "tool", "1.0.0", reason="broken on arm64")
    fed.public.revoke("tools", "gone", "1.0.0")
    r = cortex(fed, "plugin", "sync")
    assert r.exit_code == 0, r.output

    # From here on no registry answers: `list` asks none.
    fed.public.stop()
    fed.private.stop()
    r = cortex(fed, "plugin", "list")
    assert r.exit_code == 0, r.output
    state = {row[0]: row[4] for row in rows(r.stdout)[1:] if len(row) == 7}
    assert state == {"acme/tool": "yanked", "tools/gone": "revoked, blocked now", "tools/hello": "ok"}
    assert "tools/gone is blocked now: " in r.stdout and "REVOKED" in r.stdout
    r = cortex(fed, "plugin", "info", "acme/tool")
    assert r.exit_code == 0 and "warning: yanked by its publisher: broken on arm64" in r.stdout

    # Blocked now: the current policy (here: experimental blocks) asked again, offline.
    block = tmp_path / "block.yaml"
    block.write_text("cortex_config:\n  actions:\n    experimental: block\n")
    r = cortex(fed, "plugin", "list", "--data", str(block))
    assert r.exit_code == 0, r.output
    state = {row[0]: row[4] for row in rows(r.stdout)[1:] if len(row) == 7}
    assert state["tools/hello"] == "blocked now" and state["acme/tool"] == "yanked, blocked now"
    assert "tools/hello is blocked now: TIER_EXPERIMENTAL" in r.stdout
    r = cortex(fed, "plugin", "list", "--data", str(block), "--format", "json")
    status = {p["name"]: p["status"] for p in json.loads(r.stdout)["plugins"]}
    assert status["tools/hello"] == {
        "running": None, "revoked": False, "yanked": False, "yank_reason": None,
        "blocked_now": True, "reasons": status["tools/hello"]["reasons"], "problem": None}
    assert "TIER_EXPERIMENTAL" in status["tools/hello"]["reasons"]
    assert status["tools/gone"]["revoked"] is True
    assert status["acme/tool"]["yanked"] is True
    assert status["acme/tool"]["yank_reason"] == "broken on arm64"


def test_an_exact_pin_of_a_yanked_version_is_listed_yanked_and_update_says_updated(
        federation: Federation) -> None:
    fed = federation
    for version in ("1.0.0", "1.1.0"):
        fed.private.publish(fed.sigstore, "acme", "tool", version)
    with fed.private.client(fed.private.token("acme")) as c:
        c.yank("acme", "tool", "1.0.0", reason="superseded")
    assert cortex(fed, "plugin", "install", "acme/tool@1.0.0", "--yes").exit_code == 0
    r = cortex(fed, "plugin", "list")
    assert rows(r.stdout)[1][4] == "yanked"
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes")
    assert r.exit_code == 0, r.output
    assert "updated acme/tool@1.1.0 (sha256:" in r.stdout and "updateed" not in r.output
    assert rows(cortex(fed, "plugin", "list").stdout)[1][4] == "ok"


# ----------------------------------------------------------------------------------- info


def record(name: str, plugin: str) -> InstallRecord:
    return InstallRecord(
        name=name, version="1.0.0", image=f"registry.example/{plugin}@sha256:{'a' * 64}",
        digest=f"sha256:{'a' * 64}", registry="default", manifest={"name": plugin},
        decision={"tier": "experimental", "action": "warn", "reasons": []},
        policy_revision="sha256:" + "b" * 64, installed_at="2026-01-01T00:00:00Z")


@pytest.fixture
def two_tools(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    store = InstallStore(data)
    for name, plugin in (("acme/tool", "tool"), ("beta/tool", "tool"), ("acme/weather", "forecast")):
        store.put(record(name, plugin))
    return {"CORTEX_DATA_DIR": str(data), "CORTEX_CONFIG": str(tmp_path / "none" / "config.json"),
            "DOCKER_HOST": ""}


@pytest.mark.parametrize(("given", "meant"), [
    ("tool", "did you mean one of `acme/tool`, `beta/tool`?"),
    ("Tool", "did you mean one of `acme/tool`, `beta/tool`?"),
    ("forecast", "did you mean `acme/weather`?"),  # the manifest's name
    ("acme/tol", "did you mean `acme/tool`?"),
    ("weathr", "did you mean `acme/weather`?"),
    ("nothing-like-it", "fix: see `cortex plugin list`"),
])
def test_a_name_that_is_not_installed_suggests_full_names(two_tools: dict[str, str], given: str,
                                                          meant: str) -> None:
    for command in ("info", "remove"):
        r = CliRunner().invoke(app, ["plugin", command, given], env=two_tools)
        assert r.exit_code == 2, r.output
        assert f"error: {given} is not installed" in r.stderr and meant in r.stderr
    store = InstallStore(Path(two_tools["CORTEX_DATA_DIR"]))
    assert [r.name for r in store.all()] == ["acme/tool", "acme/weather", "beta/tool"]


def test_info_shows_the_full_digest(two_tools: dict[str, str]) -> None:
    r = CliRunner().invoke(app, ["plugin", "info", "acme/tool"], env=two_tools)
    assert r.exit_code == 0, r.output
    assert f"image:     registry.example/tool@sha256:{'a' * 64}" in r.stdout


# ------------------------------------------------------------------------ version, colour


def run_cortex(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CORTEX, *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, **env})


def run_in_pty(*args: str, **env: str) -> tuple[int, str]:
    """Run cortex with stdin, stdout and stderr on a pseudo-terminal; its exit code and output."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([CORTEX, *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "xterm-256color", **env}, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(10), out.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_version() -> None:
    from cortex_trust import __version__

    r = run_cortex("--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"cortex-trust {__version__}\n", "")
    r = run_cortex()  # no command: usage (2), never 1 (refused by a decision)
    assert r.returncode == 2 and "Usage:" in r.stdout + r.stderr


@pytest.fixture
def revoked_input(tmp_path: Path) -> str:
    f = tmp_path / "input.json"
    f.write_text(make_input(revoked=True).to_json())
    return str(f)


def test_colour_and_symbols_on_a_terminal_only(revoked_input: str, tmp_path: Path) -> None:
    args = ("policy", "eval", "--input", revoked_input)
    code, out = run_in_pty(*args)
    assert code == 0, out
    assert "action: ✗ \x1b[31mblock\x1b[0m (not overridable)" in out
    assert "\x1b[31mREVOKED:\x1b[0m " in out
    code, out = run_in_pty(*args, NO_COLOR="1")
    assert code == 0 and "\x1b" not in out and "✗" not in out and "action: block" in out
    r = run_cortex(*args)  # piped
    assert r.returncode == 0 and "\x1b" not in r.stdout + r.stderr and "action: block" in r.stdout
    # An error on a terminal: the label coloured, the message as it was.
    code, out = run_in_pty("policy", "eval", "--input", str(tmp_path / "missing.json"))
    assert code == 2 and "\x1b[31merror:\x1b[0m " in out, out


@pytest.mark.parametrize(("env", "coloured"), [
    ({}, False),
    ({"FORCE_COLOR": "1"}, True),
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    ({"FORCE_COLOR": "1", "NO_COLOR": ""}, True),  # NO_COLOR counts only when not empty
])
def test_force_color_and_no_color(revoked_input: str, env: dict[str, str], coloured: bool) -> None:
    r = CliRunner().invoke(app, ["policy", "eval", "--input", revoked_input], env=env)
    assert r.exit_code == 0, r.output
    assert bool(ANSI.search(r.stdout)) is coloured
    assert ("✗" in r.stdout) is coloured
    assert ANSI.sub("", r.stdout).replace("✗ ", "") == CliRunner().invoke(
        app, ["policy", "eval", "--input", revoked_input]).stdout


# ------------------------------------------------------------------------ digests, messages


def test_verify_text_shows_short_digests_and_json_full_ones() -> None:
    r = verify()
    assert r.exit_code in (0, 1), r.output
    assert f"image:  127.0.0.1:5000/acme/hello@{IMAGE_DIGEST[:19]}…" in r.stdout
    assert IMAGE_DIGEST not in r.stdout
    r = verify("--format", "json")
    assert json.loads(r.stdout)["artifact"]["digest"] == IMAGE_DIGEST


def test_a_quoted_message_is_never_cut_inside_a_digest(tmp_path: Path) -> None:
    # A report about another image, at a path long enough that the message passes the
    # 200 characters the policy quotes: both digests still arrive whole.
    deep = tmp_path / ("reports-" + "x" * 120)
    deep.mkdir()
    report = bound_report(deep, "alpine-distroless.json", OTHER)
    r = verify("--scan", report, "--tests", JUNIT / "pytest-pass.xml", "--format", "json",
               policy=None)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    [dropped] = [x["message"] for x in doc["decision"]["reasons"] if "DIGEST_MISMATCH" in x["message"]]
    assert OTHER in dropped and IMAGE_DIGEST in dropped and dropped.endswith("…"), dropped
    for reason in doc["decision"]["reasons"]:
        assert only_whole_digests(reason["message"]), reason
    r = verify("--scan", report, "--tests", JUNIT / "pytest-pass.xml", policy=None)
    assert only_whole_digests(r.stdout) and SHORT.search(r.stdout), r.stdout


def test_vulnerabilities_message_reads_right(tmp_path: Path) -> None:
    r = verify("--scan", bound_report(tmp_path, "alpine-39.json"), "--scan-scanners", "vuln,secret",
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    messages = [x["message"] for x in json.loads(r.stdout)["decision"]["reasons"]]
    assert any(m.startswith("the scan found vulnerabilities above ") for m in messages), messages
    assert not any("(y/ies)" in m for m in messages)


@given(before=st.text(max_size=80), after=st.text(max_size=80), limit=st.integers(1, 240))
@example(before="", after="000", limit=73)  # hex running on from the digest: cut before it all
def test_clip_never_cuts_a_digest(before: str, after: str, limit: int) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    text = before + digest + after
    out = clip(text, limit)
    assert len(out) <= limit
    if out != text:
        kept = out[:-1]
        assert out.endswith("…") and text.startswith(kept)
        assert digest in kept or len(kept) <= text.index(digest)
        # No cut inside a digest or the hex digits running on from it.
        runs = [m.span() for m in re.finditer(r"sha256:[0-9a-f]{64}[0-9a-f]*", text)]
        assert not any(start < len(kept) < end for start, end in runs), (kept, runs)


def test_the_cli_digest_pattern_is_the_library_one() -> None:
    from cli import _inert

    assert _inert._digest_re().pattern.replace("(", "").replace(")", "") == DIGEST
