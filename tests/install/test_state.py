"""Version selection, permission widening, and the local state stores (one policy for a
corrupt file: refused with the fix, never read as "nothing recorded")."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import InputError
from cortex_trust.install import (
    CortexConfig,
    Installer,
    InstallRecord,
    InstallStore,
    RegistryTarget,
    RevocationCache,
    VersionCandidate,
    select_version,
    widened_permissions,
)
from cortex_trust.install._state import CheckpointStore, InputStore
from cortex_trust.manifest import parse_manifest, semver_key
from cortex_trust.policy import PolicyInput, build_input
from cortex_trust.sources import generate_note_key
from tests.support.federation import manifest_text

D = "sha256:" + "a" * 64


def v(version: str, state: str = "active") -> VersionCandidate:
    return VersionCandidate(version=version, state=state, digest=D)


CANDS = [v("1.0.0"), v("1.2.0"), v("1.3.0", "yanked"), v("1.4.0", "revoked"), v("2.0.0-rc.1"), v("1.2.5")]


@pytest.mark.parametrize("request_,expected", [
    (None, "1.2.5"), ("latest", "1.2.5"), ("^1.0", "1.2.5"), ("~1.2.0", "1.2.5"), ("1.0.0", "1.0.0"),
    ("1.3.0", "1.3.0"),  # a yanked version only when pinned exactly
    (">=1.0,<1.2", "1.0.0"), ("2.0.0-rc.1", "2.0.0-rc.1"),
])
def test_select(request_: str | None, expected: str) -> None:
    assert select_version(CANDS, request_).version == expected


@pytest.mark.parametrize("request_,message", [
    ("1.4.0", "revoked"), ("9.9.9", "no version"), ("^1.3", "revoked, yanked"), ("not a range!", "not a version"),
])
def test_select_refuses(request_: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        select_version(CANDS, request_)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
                          st.sampled_from(["active", "yanked", "revoked"])), min_size=1, max_size=12))
def test_select_never_returns_revoked_or_yanked_for_ranges(rows: list[tuple[int, int, int, str]]) -> None:
    cands = [v(f"{a}.{b}.{c}", s) for a, b, c, s in rows]
    try:
        chosen = select_version(cands, ">=0.0.0")
    except InputError:
        assert all(c.state != "active" for c in cands)
        return
    assert chosen.state == "active"
    assert all(semver_key(chosen.version) >= semver_key(c.version) for c in cands if c.state == "active")


def doc(network: bool = False, filesystem: bool = False, sandbox: bool = True,
        caps: tuple[str, ...] = ("greet",)) -> dict:
    return {"trust": {"network": network, "filesystem": filesystem, "sandbox": sandbox},
            "capabilities": [{"name": c, "method": "GET", "endpoint": f"/{c}"} for c in caps]}


@pytest.mark.security_review
@pytest.mark.parametrize("state", ["Revoked", "REVOKED", "deleted", "", "revoked "])
def test_exact_pin_never_takes_a_version_in_an_unknown_state(state: str) -> None:
    with pytest.raises(InputError):
        select_version([VersionCandidate("1.0.0", state, D)], "1.0.0")


@pytest.mark.security_review
def test_exact_pin_still_takes_active_and_yanked() -> None:
    for state in ("active", "yanked"):
        assert select_version([VersionCandidate("1.0.0", state, D)], "1.0.0").state == state


@pytest.mark.security_review
def test_bad_range_with_no_active_version_is_an_input_error() -> None:
    with pytest.raises(InputError):
        select_version([VersionCandidate("1.0.0", "yanked", D)], ">>1")


def test_widening() -> None:
    assert widened_permissions(doc(), doc()) == []
    assert widened_permissions(doc(network=True), doc()) == []  # narrowing is fine
    assert widened_permissions(doc(), doc(network=True, filesystem=True, sandbox=False, caps=("greet", "x"))) == [
        "network access", "filesystem access", "running without a sandbox", "capability x (GET /x)"]
    assert widened_permissions(None, doc(network=True)) == ["network access", "capability greet (GET /greet)"]


def record(name: str = "acme/hello") -> InstallRecord:
    return InstallRecord(name=name, version="1.0.0", image=f"127.0.0.1:5000/acme/hello@{D}", digest=D,
                         registry="http://127.0.0.1:8080", manifest=doc(), decision={"action": "allow"},
                         policy_revision="sha256:x", installed_at="2026-11-25T00:00:00Z")


def test_store_round_trip(tmp_path: Path) -> None:
    store = InstallStore(tmp_path / "data")
    assert store.all() == [] and store.get("acme/hello") is None
    store.put(record())
    store.put(record("cortex/b"))
    assert [r.name for r in store.all()] == ["acme/hello", "cortex/b"]
    assert store.get("acme/hello") == record()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.remove("acme/hello") and not store.remove("acme/hello")


def test_store_corrupt_is_an_input_error(tmp_path: Path) -> None:
    store = InstallStore(tmp_path)
    store.path.write_text("{nope")
    with pytest.raises(InputError, match="corrupt"):
        store.all()


@pytest.mark.security_review
def test_corrupt_install_record_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "installed.json").write_text(json.dumps(
        {"schema": "cortex.installed/v1", "plugins": {"acme/x": {"name": "acme/x"}}}))
    store = InstallStore(tmp_path)
    with pytest.raises(InputError):
        store.get("acme/x")
    with pytest.raises(InputError):
        store.all()


@pytest.mark.security_review
def test_install_store_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (tmp_path / f"installed.json.{os.getpid()}.tmp").symlink_to(victim)
    store = InstallStore(tmp_path)
    assert store.remove("nothing") is False
    store._write({})
    assert victim.read_text() == "untouched\n"
    assert store.all() == []


# ----------------------------------------------------------------- one policy for corrupt files

TARGET = RegistryTarget(name="acme", urls=("https://acme.example",))


def _stored_input() -> PolicyInput:
    return build_input(manifest=parse_manifest(manifest_text("hello", "1.0.0")), image=None,
                       digest=D, operation="install", now=datetime(2026, 3, 1, tzinfo=UTC),
                       cortex_version="0.1.0", namespace="acme")


def _readers(data: Path) -> dict[str, tuple[Path, Callable[[], object]]]:
    """Each store's file, and a read of it."""
    verifier = generate_note_key("registry.test/audit").verifier
    checkpoints = CheckpointStore(data)
    return {
        "install state": (InstallStore(data).path, InstallStore(data).all),
        "revocation cache": (RevocationCache(data).path,
                             lambda: RevocationCache(data).get("acme", url="https://acme.example")),
        "stored input": (InputStore(data)._path("acme/hello"),
                         lambda: InputStore(data).get("acme/hello")),
        "stored feed": (InputStore(data)._path("acme/hello"),
                        lambda: InputStore(data).feed("acme/hello")),
        "log checkpoint": (checkpoints._path(TARGET, verifier),
                           lambda: checkpoints.get(TARGET, verifier)),
    }


@pytest.mark.parametrize("store", ["install state", "revocation cache", "stored input",
                                   "stored feed", "log checkpoint"])
@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_every_store_refuses_a_corrupt_file_with_the_fix(tmp_path: Path, store: str,
                                                         content: str) -> None:
    data = tmp_path / "data"
    path, read = _readers(data)[store]
    assert read() in (None, [])  # nothing recorded yet: no file is not corruption
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(InputError) as e:
        read()
    assert str(path) in e.value.message and "corrupt" in e.value.message
    assert e.value.advice and str(path) in e.value.advice


def test_stored_input_round_trip(tmp_path: Path) -> None:
    inputs = InputStore(tmp_path / "data")
    assert inputs.get("acme/hello") is None and inputs.feed("acme/hello") is None
    inputs.put("acme/hello", _stored_input(), feed=TARGET)
    assert inputs.get("acme/hello") == _stored_input()
    assert inputs.feed("acme/hello") == ("acme", "https://acme.example")
    inputs.remove("acme/hello")
    inputs.remove("acme/hello")
    assert inputs.get("acme/hello") is None


@pytest.mark.parametrize(("edit", "why"), [
    ({"name": "acme/other"}, "it is about 'acme/other', not 'acme/hello'"),
    ({"input": {"schema_version": "cortex.input/v1"}}, "the input is invalid at"),
    ({"feed": ["acme"]}, "`feed` is not [registry name, URL]"),
    ({"feed": "acme"}, "`feed` is not [registry name, URL]"),
])
def test_a_stored_input_that_is_not_what_was_written_is_corrupt(
        tmp_path: Path, edit: dict[str, object], why: str) -> None:
    inputs = InputStore(tmp_path / "data")
    inputs.put("acme/hello", _stored_input(), feed=TARGET)
    path = inputs._path("acme/hello")
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(InputError) as e:
        inputs.get("acme/hello") if "feed" not in edit else inputs.feed("acme/hello")
    assert e.value.message.startswith(f"the recorded policy input {path} is corrupt: {why}")
    assert e.value.advice == f"move {path} away and reinstall: cortex plugin install acme/hello"


def test_a_stored_input_recorded_without_its_feed_has_no_feed(tmp_path: Path) -> None:
    inputs = InputStore(tmp_path / "data")
    inputs.put("acme/hello", _stored_input(), feed=TARGET)
    path = inputs._path("acme/hello")
    doc = json.loads(path.read_text())
    del doc["feed"]
    path.write_text(json.dumps(doc))
    assert inputs.feed("acme/hello") is None


def test_run_refuses_an_installation_whose_stored_input_is_corrupt(tmp_path: Path) -> None:
    """Through the installer: a corrupt stored input is named with its fix before any registry
    or policy is asked."""
    data = tmp_path / "data"
    InstallStore(data).put(record())
    path = InputStore(data)._path("acme/hello")
    path.parent.mkdir(mode=0o700, parents=True)
    path.write_text("{not json")
    path.chmod(0o600)

    def no_engine() -> Any:
        raise AssertionError("no policy is asked about a corrupt installation")

    inst = Installer(config=CortexConfig(registry="https://registry.invalid"), data_dir=data,
                     engine_factory=no_engine, trusted_roots=[], cortex_version="0.1.0")
    with pytest.raises(InputError) as e:
        inst.check_run("acme/hello", now=datetime(2026, 3, 1, tzinfo=UTC))
    assert f"the recorded policy input {path} is corrupt" in e.value.message
    assert e.value.advice == f"move {path} away and reinstall: cortex plugin install acme/hello"
