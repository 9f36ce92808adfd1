"""Version selection, permission widening and the local install record."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import InputError
from cortex_trust.install import InstallRecord, InstallStore, VersionCandidate, select_version, widened_permissions
from cortex_trust.manifest import semver_key

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
