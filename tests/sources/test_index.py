"""The signed index as a client reads it: one test per attack class TUF defines, against a real
index (written by the registry's own repository code) served over HTTP by a static server on
loopback, with a tampered copy (the "evil mirror") where the attack needs one.

Every attack ends in :class:`RegistryUnavailable` naming the check that failed (or, for a
document the metadata does not list, in an authenticated "not found"), never in a document
being believed.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.errors import RegistryUnavailable
from cortex_trust.install import FederatedRegistry, RegistryTarget
from cortex_trust.sources import IndexClient, IndexLayout, RegistryRequestError
from tests.support.static_index import copy_tree, new_index, plugin_doc, serve_dir

TOOL = IndexLayout.plugin("acme", "tool")


def _client(url: str, cache: Path, **kw: Any) -> IndexClient:
    return IndexClient(url, cache_dir=cache, **kw)


def _target_file(www: Path, path: str) -> Path:
    """The served file of document ``path`` (hash-prefixed name)."""
    dirname, _, base = path.rpartition("/")
    (found,) = (www / "targets" / dirname).glob(f"*.{base}")
    return found


@pytest.fixture
def index(tmp_path: Path) -> Any:
    return new_index(tmp_path, documents={TOOL: plugin_doc("acme", "tool")})


def test_a_verified_document_is_read_and_cached(index: Any, tmp_path: Path) -> None:
    with serve_dir(index.dir) as srv:
        with _client(srv.url, tmp_path / "c") as c:
            assert c.get_plugin("acme", "tool").description == "A plugin."
        with _client(srv.url, tmp_path / "c") as c:
            srv.requests.clear()
            assert c.get_plugin("acme", "tool").name == "tool"
        # The second client fetched fresh metadata but took the document from its cache.
        assert "/metadata/timestamp.json" in srv.requests
        assert not any(r.startswith("/targets/") for r in srv.requests)


def test_an_unlisted_document_is_an_authenticated_not_found(index: Any, tmp_path: Path) -> None:
    """Extraneous dependencies: a file the metadata does not list is never read, even when the
    server has it."""
    extra = index.dir / "targets" / "plugins" / "acme" / "evil.json"
    extra.write_bytes(plugin_doc("acme", "evil"))
    with serve_dir(index.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryRequestError) as e:
            c.get_plugin("acme", "evil")
        assert e.value.status == 404
        assert not any("evil" in r for r in srv.requests)


@pytest.mark.parametrize("tamper", ["same_length", "longer"])
def test_arbitrary_software_a_tampered_document_is_refused(index: Any, tmp_path: Path,
                                                           tamper: str) -> None:
    evil = copy_tree(index.dir, tmp_path / "evil")
    f = _target_file(evil, TOOL)
    good = f.read_bytes()
    bad = good.replace(b"A plugin.", b"Evil plug") if tamper == "same_length" else good + b" "
    assert bad != good
    f.write_bytes(bad)
    with serve_dir(evil) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryUnavailable, match=r"failed TUF verification|could not download"):
            c.get_plugin("acme", "tool")


def test_rollback_older_metadata_is_refused(index: Any, tmp_path: Path) -> None:
    old = copy_tree(index.dir, tmp_path / "old")
    index.update({TOOL: plugin_doc("acme", "tool", latest="2.0.0")}, now=datetime.now(UTC))
    with serve_dir(index.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        assert c.get_plugin("acme", "tool").latest_version == "2.0.0"
    # A mirror that still serves the older (unexpired, validly signed) index.
    with serve_dir(old) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryUnavailable, match="BadVersionNumberError"):
            c.get_plugin("acme", "tool")


def test_indefinite_freeze_an_expired_timestamp_is_refused(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    repo = new_index(tmp_path, now=past, documents={TOOL: plugin_doc("acme", "tool")})
    with serve_dir(repo.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryUnavailable, match="is stale") as e:
            c.get_plugin("acme", "tool")
        assert "refresh" in (e.value.advice or "")
    # Re-signing the timestamp (what the registry does in time) makes it current again.
    repo.refresh(now=datetime.now(UTC))
    with serve_dir(repo.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        assert c.get_plugin("acme", "tool").name == "tool"


def test_endless_data_oversized_metadata_and_documents_are_cut_off(index: Any,
                                                                   tmp_path: Path) -> None:
    with serve_dir(index.dir, override={"/metadata/timestamp.json": b"{" + b" " * 100_000}) as srv:
        with _client(srv.url, tmp_path / "c1") as c, \
                pytest.raises(RegistryUnavailable, match="DownloadLengthMismatchError"):
            c.get_plugin("acme", "tool")
    evil = copy_tree(index.dir, tmp_path / "evil")
    f = _target_file(evil, TOOL)
    f.write_bytes(f.read_bytes() + b" " * 10_000_000)
    with serve_dir(evil) as srv, _client(srv.url, tmp_path / "c2") as c:
        with pytest.raises(RegistryUnavailable, match="DownloadLengthMismatchError"):
            c.get_plugin("acme", "tool")


def test_fast_forward_a_version_signed_by_an_unknown_key_is_refused(index: Any,
                                                                    tmp_path: Path) -> None:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata

    ts = Metadata.from_bytes((index.metadata / "timestamp.json").read_bytes())
    ts.signed.version = 2**30
    ts.sign(CryptoSigner.generate_ed25519())
    with serve_dir(index.dir, override={"/metadata/timestamp.json": ts.to_bytes()}) as srv:
        with _client(srv.url, tmp_path / "c") as c:
            with pytest.raises(RegistryUnavailable, match="UnsignedMetadataError"):
                c.get_plugin("acme", "tool")
    # The client did not move to the forged version: the real index still reads.
    with serve_dir(index.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        assert c.get_plugin("acme", "tool").name == "tool"


def test_key_compromise_below_threshold_another_roles_key_cannot_sign(index: Any,
                                                                      tmp_path: Path) -> None:
    """An attacker holding the online timestamp key signs a snapshot of its own: the snapshot
    role's threshold is not met by a key of another role."""
    from tuf.api.metadata import Metadata, MetaFile

    evil = copy_tree(index.dir, tmp_path / "evil")
    snap = index.snapshot()
    snap.signed.version += 1
    snap.signed.meta[f"{index._succinct().get_role_for_target(TOOL)}.json"] = MetaFile(version=1)
    snap.sign(index.keys.signer("timestamp"))
    (evil / "metadata" / f"{snap.signed.version}.snapshot.json").write_bytes(snap.to_bytes())
    ts = Metadata.from_bytes((evil / "metadata" / "timestamp.json").read_bytes())
    ts.signed.version += 1
    ts.signed.snapshot_meta = MetaFile(version=snap.signed.version)
    ts.sign(index.keys.signer("timestamp"))
    (evil / "metadata" / "timestamp.json").write_bytes(ts.to_bytes())
    with serve_dir(evil) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryUnavailable, match="UnsignedMetadataError"):
            c.get_plugin("acme", "tool")


def test_mix_and_match_a_bin_from_another_moment_is_refused(index: Any, tmp_path: Path) -> None:
    role = index._succinct().get_role_for_target(TOOL)
    old_bin = (index.metadata / f"{index.snapshot().signed.meta[f'{role}.json'].version}"
               f".{role}.json").read_bytes()
    index.update({TOOL: plugin_doc("acme", "tool", latest="2.0.0")}, now=datetime.now(UTC))
    current = index.snapshot().signed.meta[f"{role}.json"].version
    # The mirror serves today's timestamp and snapshot with yesterday's bin under today's name.
    with serve_dir(index.dir, override={f"/metadata/{current}.{role}.json": old_bin}) as srv:
        with _client(srv.url, tmp_path / "c") as c:
            with pytest.raises(RegistryUnavailable, match="BadVersionNumberError"):
                c.get_plugin("acme", "tool")


def test_slow_retrieval_a_trickling_server_is_cut_off(index: Any, tmp_path: Path) -> None:
    with serve_dir(index.dir, trickle={"/metadata/timestamp.json"}, trickle_delay=0.05) as srv:
        with _client(srv.url, tmp_path / "c", deadline=1.0) as c:
            with pytest.raises(RegistryUnavailable, match="SlowRetrievalError"):
                c.get_plugin("acme", "tool")


def test_wrong_software_a_document_of_another_plugin_is_refused(tmp_path: Path) -> None:
    """Even a correctly signed index (a compromised bins key, or a bug) cannot make one plugin's
    document stand in for another's: the client checks what the document is about."""
    repo = new_index(tmp_path, documents={TOOL: plugin_doc("acme", "other")})
    with serve_dir(repo.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        with pytest.raises(RegistryUnavailable, match="another plugin"):
            c.get_plugin("acme", "tool")


def test_wrong_keys_another_index_at_the_pinned_url_is_refused(index: Any, tmp_path: Path) -> None:
    with serve_dir(index.dir) as srv, _client(srv.url, tmp_path / "c") as c:
        c.get_plugin("acme", "tool")  # root pinned on first use
    impostor = new_index(tmp_path / "impostor", documents={TOOL: plugin_doc("acme", "tool")})
    with serve_dir(impostor.dir) as srv:
        # Same URL path layout, other keys: served where the client pinned the real root.
        with _client(srv.url, tmp_path / "c") as c:
            with pytest.raises(RegistryUnavailable, match="failed TUF verification"):
                c.get_plugin("acme", "tool")
        # An operator-given root pins the real keys even on first use.
        root = (index.metadata / "1.root.json").read_bytes()
        with _client(srv.url, tmp_path / "fresh", trusted_root=root) as c:
            with pytest.raises(RegistryUnavailable, match="failed TUF verification"):
                c.get_plugin("acme", "tool")


@pytest.mark.parametrize("role", ["root", "targets", "snapshot", "timestamp", "bins"])
def test_key_rotation_is_followed_by_clients(index: Any, tmp_path: Path, role: str) -> None:
    with serve_dir(index.dir) as srv:
        with _client(srv.url, tmp_path / "c") as c:
            c.get_plugin("acme", "tool")
        old_key = index.keys.signer(role).public_key.keyid
        index.rotate(role, now=datetime.now(UTC))
        assert index.keys.signer(role).public_key.keyid != old_key
        index.update({TOOL: plugin_doc("acme", "tool", latest="3.0.0")}, now=datetime.now(UTC))
        with _client(srv.url, tmp_path / "c") as c:
            assert c.get_plugin("acme", "tool").latest_version == "3.0.0"


def test_a_root_not_signed_by_the_previous_root_is_refused(index: Any, tmp_path: Path) -> None:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata

    with serve_dir(index.dir) as srv:
        with _client(srv.url, tmp_path / "c") as c:
            c.get_plugin("acme", "tool")
        root = Metadata.from_bytes((index.metadata / "1.root.json").read_bytes())
        thief = CryptoSigner.generate_ed25519()
        for r in ("root", "timestamp"):
            for keyid in list(root.signed.roles[r].keyids):
                root.signed.revoke_key(keyid, r)
            root.signed.add_key(thief.public_key, r)
        root.signed.version = 2
        root.sign(thief)
        srv.override["/metadata/2.root.json"] = root.to_bytes()
        with _client(srv.url, tmp_path / "c") as c:
            with pytest.raises(RegistryUnavailable, match="UnsignedMetadataError"):
                c.get_plugin("acme", "tool")


def test_malicious_mirror_falls_back_to_the_next_and_all_bad_is_one_clear_error(
        index: Any, tmp_path: Path) -> None:
    evil = copy_tree(index.dir, tmp_path / "evil")
    f = _target_file(evil, TOOL)
    f.write_bytes(f.read_bytes().replace(b"A plugin.", b"Evil plug"))
    with serve_dir(evil) as bad, serve_dir(index.dir) as good:
        target = RegistryTarget(name="acme", urls=("https://registry.invalid",),
                                index_urls=(bad.url, good.url))
        fed = FederatedRegistry(target, data_dir=tmp_path / "data")
        try:
            assert fed.call(lambda c: c.get_plugin("acme", "tool")).description == "A plugin."
            assert fed.served_by == good.url
        finally:
            fed.close()
        target = RegistryTarget(name="acme", urls=("https://registry.invalid",),
                                index_urls=(bad.url, bad.url + "/"))
        # A fresh client (the first one has the verified document cached and would not ask).
        fed = FederatedRegistry(target, data_dir=tmp_path / "fresh")
        try:
            with pytest.raises(RegistryUnavailable, match="registry 'acme' is unavailable") as e:
                fed.call(lambda c: c.get_plugin("acme", "tool"))
            assert "failed TUF verification" in e.value.message
        finally:
            fed.close()


def test_file_urls_serve_an_air_gapped_copy(index: Any, tmp_path: Path) -> None:
    with _client(f"file://{index.dir}", tmp_path / "c") as c:
        assert c.get_plugin("acme", "tool").name == "tool"
        with pytest.raises(RegistryRequestError):
            c.get_plugin("acme", "missing")


def test_mirror_copies_and_verifies_and_the_copy_serves_clients(index: Any, tmp_path: Path) -> None:
    from cortex_trust.sources import mirror_index

    with serve_dir(index.dir) as srv:
        counts = mirror_index(srv.url, tmp_path / "copy", cache_dir=tmp_path / "trust")
    assert counts["targets"] == 1
    with serve_dir(tmp_path / "copy") as srv, _client(srv.url, tmp_path / "c") as c:
        assert c.get_plugin("acme", "tool").description == "A plugin."
    # A source that does not verify leaves the destination as it was.
    evil = copy_tree(index.dir, tmp_path / "evil")
    f = _target_file(evil, TOOL)
    f.write_bytes(f.read_bytes() + b" ")
    with serve_dir(evil) as srv, pytest.raises(RegistryUnavailable):
        mirror_index(srv.url, tmp_path / "copy", cache_dir=tmp_path / "trust2")
    assert json.loads((tmp_path / "copy" / "mirror.json").read_text())["source"].startswith("http")
    shutil.rmtree(evil)


def test_data_is_as_old_as_the_signed_timestamp(tmp_path: Path) -> None:
    signed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    repo = new_index(tmp_path, now=signed, documents={TOOL: plugin_doc("acme", "tool")})
    with _client(f"file://{repo.dir}", tmp_path / "c") as c:
        assert c.data_as_of(datetime.now(UTC)) == signed
