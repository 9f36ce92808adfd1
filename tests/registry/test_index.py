"""The registry's signed index: the documents it holds are the API's own bytes, a write re-signs
only the bins it touched, the registry keeps the index current after its writes, and the
`cortex registry index` commands build, refresh, rotate and mirror it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cortex_trust.sources import IndexClient, IndexLayout
from tests.registry._helpers import run_cli
from tests.registry.conftest import Clock, Registry


@pytest.fixture
def indexed(db_url: str, evaluator: Any, trust_roots: tuple[Any, ...],
            tmp_path: Path) -> Iterator[Registry]:
    """A registry app that keeps a signed index (256 bins) in ``tmp_path/index/www``."""
    from registry import RegistryConfig, create_app, make_engine, migrate
    from registry._index import IndexRepository, KeyRing

    clock = Clock(now=datetime.now(UTC))  # clients check expiry against the real clock
    IndexRepository(tmp_path / "index" / "www", KeyRing(tmp_path / "index" / "keys")).create(
        bins=256, now=clock())
    engine = make_engine(db_url)
    migrate(engine)
    config = RegistryConfig(db_url=db_url, trusted_roots=trust_roots, clock=clock,
                            index_dir=tmp_path / "index" / "www",
                            index_keys=tmp_path / "index" / "keys")
    app = create_app(config, evaluator=evaluator, db=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Registry(client=client, app=app, clock=clock, db_url=db_url)
    engine.dispose()


def _keeper(reg: Registry) -> Any:
    keeper = reg.app.state.index_keeper
    assert keeper.wait_idle(60), keeper.error
    assert keeper.error is None
    return keeper


def _api_bytes(reg: Registry, path: str) -> bytes:
    r = reg.client.get(path)
    assert r.status_code == 200, r.text
    return r.content


def test_the_index_holds_the_api_bytes_and_follows_every_write(indexed: Registry) -> None:
    reg = indexed
    tok = reg.token()
    assert reg.publish(tok, name="hello", version="1.0.0").status_code == 201
    assert reg.publish(tok, name="hello", version="1.1.0").status_code == 201
    r = reg.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                        json={"reason": "key compromised"}, headers=reg.auth(tok))
    assert r.status_code == 200, r.text
    repo = _keeper(reg).repo
    base = "/api/v1/plugins/acme/hello"
    for target, route in [(IndexLayout.plugin("acme", "hello"), base),
                          (IndexLayout.versions("acme", "hello"), f"{base}/versions"),
                          (IndexLayout.version("acme", "hello", "1.0.0"), f"{base}/versions/1.0.0"),
                          (IndexLayout.version("acme", "hello", "1.1.0"), f"{base}/versions/1.1.0"),
                          (IndexLayout.bundle("acme", "hello", "1.1.0"),
                           f"{base}/versions/1.1.0/bundle"),
                          (IndexLayout.revocations(0), "/api/v1/revocations?cursor=0&limit=500")]:
        assert repo.document(target) == _api_bytes(reg, route), target
    shard = json.loads(repo.document(IndexLayout.catalogue(IndexLayout.shard("acme/hello"))))
    assert shard["items"] == json.loads(_api_bytes(reg, "/api/v1/plugins"))["items"]
    # Read back through TUF, as a client does.
    with IndexClient(f"file://{repo.dir}", cache_dir=repo.dir.parent / "client") as c:
        assert c.get_version("acme", "hello", "1.0.0").state == "revoked"
        assert [v.version for v in c.list_versions("acme", "hello")] == ["1.0.0", "1.1.0"]
        assert [e.version for e in c.revocations().items] == ["1.0.0"]
        assert [p.name for p in c.iter_plugins(q="hello")] == ["hello"]


def test_a_publish_re_signs_only_the_bins_it_touched(indexed: Registry) -> None:
    reg = indexed
    tok = reg.token()
    for n in range(6):
        assert reg.publish(tok, name=f"tool-{n}", version="1.0.0").status_code == 201
    repo = _keeper(reg).repo
    before = {k: v.version for k, v in repo.snapshot().signed.meta.items()}
    from registry._index import changed_documents

    stats = repo.update(changed_documents(reg.store, repo, {("acme", "tool-0")}),
                        now=reg.clock())
    assert stats.bins_signed == 0  # nothing changed: nothing signed
    assert reg.publish(tok, name="tool-0", version="1.1.0").status_code == 201
    _keeper(reg)
    after = {k: v.version for k, v in repo.snapshot().signed.meta.items()}
    changed = {k for k in after if after[k] != before.get(k)}
    # The plugin's documents, its catalogue shard and the revocation chunk: at most 6 of 256.
    assert 1 <= len(changed) <= 6, changed
    assert "targets.json" not in changed


def test_the_keeper_re_signs_the_timestamp_before_it_expires(indexed: Registry) -> None:
    reg = indexed
    keeper = _keeper(reg)
    first = keeper.repo.timestamp().signed
    reg.clock.advance(hours=13)
    keeper.run_once()
    second = keeper.repo.timestamp().signed
    assert second.version > first.version and second.expires > first.expires


def test_a_failed_update_is_retried_in_full_and_never_fails_the_write(indexed: Registry,
                                                                      tmp_path: Path) -> None:
    reg = indexed
    keeper = reg.app.state.index_keeper
    bins_key = tmp_path / "index" / "keys" / "bins.pem"
    saved = bins_key.read_bytes()
    bins_key.unlink()
    keeper.repo.keys._loaded.clear()
    assert reg.publish(reg.token(), name="hello", version="1.0.0").status_code == 201
    assert not keeper.wait_idle(1.0)
    assert keeper.error is not None and "bins key" in keeper.error
    bins_key.write_bytes(saved)
    bins_key.chmod(0o600)
    assert keeper.wait_idle(30)
    assert keeper.repo.document(IndexLayout.plugin("acme", "hello")) is not None


def test_cli_build_refresh_rotate_and_mirror(db_url: str, registry: Registry, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert registry.publish(registry.token(), name="hello", version="1.0.0").status_code == 201
    out, keys = tmp_path / "www", tmp_path / "keys"
    code, stdout, err = run_cli(monkeypatch, capsys, ["registry", "index", "build", "--db", db_url,
                                                      "--out", str(out), "--keys", str(keys),
                                                      "--bins", "16"], token=None)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["created"] and doc["bins"] == 16 and "offline" in err
    assert {p.name for p in keys.iterdir()} == {f"{r}.pem" for r in
                                                 ("root", "targets", "snapshot", "timestamp", "bins")}
    assert all((p.stat().st_mode & 0o077) == 0 for p in keys.iterdir())
    # Again: nothing changed, nothing re-signed.
    code, stdout, err = run_cli(monkeypatch, capsys, ["registry", "index", "build", "--db", db_url,
                                                      "--out", str(out), "--keys", str(keys)],
                                token=None)
    assert code == 0 and json.loads(stdout)["bins_signed"] == 0, err
    # The offline root key kept apart: rotating the timestamp key needs it, refresh does not.
    root_key = tmp_path / "offline" / "root.pem"
    root_key.parent.mkdir(mode=0o700)
    (keys / "root.pem").rename(root_key)
    code, stdout, err = run_cli(monkeypatch, capsys, ["registry", "index", "refresh", "--out",
                                                      str(out), "--keys", str(keys)], token=None)
    assert code == 0 and json.loads(stdout)["metadata_signed"] == ["timestamp.json"], err
    code, _, err = run_cli(monkeypatch, capsys, ["registry", "index", "rotate-keys", "--out",
                                                 str(out), "--keys", str(keys), "--role",
                                                 "timestamp"], token=None)
    assert code == 2 and "root key" in err
    code, stdout, err = run_cli(monkeypatch, capsys, ["registry", "index", "rotate-keys", "--out",
                                                      str(out), "--keys", str(keys), "--root-key",
                                                      str(root_key), "--role", "timestamp"],
                                token=None)
    assert code == 0 and json.loads(stdout)["root"] == 2, err
    code, stdout, err = run_cli(monkeypatch, capsys, ["registry", "index", "mirror",
                                                      f"file://{out}", str(tmp_path / "copy"),
                                                      "--root", str(out / "metadata" /
                                                                    "1.root.json")], token=None)
    assert code == 0, err
    with IndexClient(f"file://{tmp_path / 'copy'}", cache_dir=tmp_path / "client") as c:
        assert c.get_plugin("acme", "hello").name == "hello"
    # A mirror of something that is not an index: could not run, nothing written.
    code, _, err = run_cli(monkeypatch, capsys, ["registry", "index", "mirror",
                                                 f"file://{tmp_path / 'nothing'}",
                                                 str(tmp_path / "copy2")], token=None)
    assert code == 3 and not (tmp_path / "copy2").exists(), err


def test_expired_offline_roles_are_reported_by_refresh(tmp_path: Path) -> None:
    from registry._index import IndexRepository, KeyRing

    clock = Clock()
    repo = IndexRepository(tmp_path / "www", KeyRing(tmp_path / "keys"))
    repo.create(bins=2, now=clock())
    assert repo.expiring_offline(now=clock()) == []
    assert repo.expiring_offline(now=clock() + timedelta(days=20)) == ["targets"]
    stats = repo.renew_offline(now=clock() + timedelta(days=20))
    assert {"2.root.json", "2.targets.json"} <= set(stats.metadata_signed)
    assert repo.expiring_offline(now=clock() + timedelta(days=20)) == []


