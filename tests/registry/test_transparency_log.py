"""The audit log as a transparency log: signed checkpoints, proofs over HTTP, and
`cortex registry audit verify --checkpoint` catching what the hash chain alone could not.

Each tamper scenario is what an attacker holding the database (but not the log key) can do,
including recomputing every hash, the head and every tree node afterwards (:func:`_rebuild`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cortex_trust.sources import (
    NoteSigner,
    ProofError,
    generate_note_key,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from tests.registry._helpers import migrator
from tests.registry.conftest import BUNDLE_WHEEL, WHEEL_DIGEST, Clock, Registry

ORIGIN = "registry.test/audit"


@pytest.fixture
def log_key(tmp_path: Path) -> tuple[NoteSigner, Path]:
    key = generate_note_key(ORIGIN)
    path = tmp_path / "log.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.text + "\n")
    return key, path


@pytest.fixture
def signed(db_url: str, evaluator: Any, trust_roots: tuple[Any, ...],
           log_key: tuple[NoteSigner, Path]) -> Iterator[Registry]:
    """The real app on a real database, signing checkpoints with ``log_key``."""
    from fastapi.testclient import TestClient

    from registry import RegistryConfig, create_app, make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    config = RegistryConfig(db_url=db_url, trusted_roots=trust_roots, clock=clock,
                            oci_registries=("ghcr.io",), log_signer=log_key[0])
    app = create_app(config, evaluator=evaluator, db=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Registry(client=client, app=app, clock=clock, db_url=db_url)
    engine.dispose()


def _activity(reg: Registry) -> dict[str, str]:
    """A publisher publishes two versions and revokes one; an admin creates a reviewer token
    (the newest entry)."""
    acme = reg.token()
    assert reg.publish(acme).status_code == 201
    assert reg.publish(acme, version="1.1.0", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL).status_code == 201
    r = reg.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                        json={"reason": "superseded"}, headers=reg.auth(acme))
    assert r.status_code == 200, r.text
    reg.token("cortex-core", "reviewer", holder="ada")
    with reg.store.engine.connect() as c:
        tokens = dict(c.execute(text("SELECT role, token_id FROM api_token")).all())
    return {"publisher": tokens["publisher"], "reviewer": tokens["reviewer"]}


def _save_checkpoint(reg: Registry, path: Path) -> str:
    r = reg.client.get("/api/v1/log/checkpoint")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    path.write_text(r.text)
    return r.text


def _verify(reg: Registry, *extra: str) -> Any:
    from cli.main import app

    return CliRunner().invoke(app, ["registry", "audit", "verify", "--db", reg.db_url, *extra])


def _rebuild(engine: Any) -> None:
    """Recompute the chain, the head and every tree node from the entries that remain: what
    a database attacker without the log key can do to make the log look intact."""
    from cortex_trust.sources import append_leaf
    from registry._audit import GENESIS, entry_body

    with engine.begin() as c:
        rows = c.execute(text("SELECT id, actor, action, target, before_json, after_json, at, "
                              "effects_json FROM audit_log ORDER BY id")).mappings().all()
        c.execute(text("DELETE FROM log_node"))
        prev, frontier = GENESIS, []
        for size, r in enumerate(rows):
            body = entry_body(id=r["id"], actor=r["actor"], action=r["action"],
                              target=r["target"], before_json=r["before_json"],
                              after_json=r["after_json"], at=r["at"], prev_hash=prev,
                              effects_json=r["effects_json"])
            h = hashlib.sha256(body).hexdigest()
            c.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                      {"p": prev, "h": h, "i": r["id"]})
            frontier, created = append_leaf(frontier, size, leaf_hash(body))
            for level, idx, value in created:
                c.execute(text("INSERT INTO log_node (level, idx, hash) VALUES (:l, :i, :h)"),
                          {"l": level, "i": idx, "h": value.hex()})
            prev = h
        c.execute(text("UPDATE audit_head SET seq = :n, hash = :h WHERE id = 1"),
                  {"n": len(rows), "h": prev})


def _key_args(key: NoteSigner, checkpoint: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--log-key-pub", key.verifier.text]


# ------------------------------------------------------------------------- the happy path


def test_an_intact_log_extends_every_earlier_checkpoint(signed: Registry, tmp_path: Path,
                                                        log_key: tuple[NoteSigner, Path]) -> None:
    key, key_file = log_key
    _activity(signed)
    early = tmp_path / "early.checkpoint"
    _save_checkpoint(signed, early)
    signed.token("acme", "installation")  # the log grows after the checkpoint was kept
    ok = _verify(signed, *_key_args(key, early))
    assert ok.exit_code == 0, ok.output
    assert "audit log intact" in ok.output and "extends the checkpoint of 5 entries" in ok.output
    # With the signing key, the current tree head is printed as a new checkpoint to keep.
    again = _verify(signed, "--checkpoint", str(early), "--log-key", str(key_file))
    assert again.exit_code == 0, again.output
    latest = open_checkpoint(again.stdout, key.verifier)
    assert latest.size == 6 and latest.origin == ORIGIN


def test_checkpoint_needs_a_key_and_a_good_signature(signed: Registry, tmp_path: Path,
                                                     log_key: tuple[NoteSigner, Path]) -> None:
    key, _ = log_key
    _activity(signed)
    cp = tmp_path / "cp"
    note = _save_checkpoint(signed, cp)
    no_key = _verify(signed, "--checkpoint", str(cp))
    assert no_key.exit_code == 2 and "--log-key-pub" in no_key.output
    stranger = generate_note_key(ORIGIN)
    wrong = _verify(signed, *_key_args(stranger, cp))
    assert wrong.exit_code == 2 and "not signed by" in wrong.output
    # A checkpoint edited to claim a smaller size no longer verifies: it is not evidence.
    lines = note.split("\n")
    lines[1] = "1"
    cp.write_text("\n".join(lines))
    forged = _verify(signed, *_key_args(key, cp))
    assert forged.exit_code == 2 and "does not verify" in forged.output
    bad_file = _verify(signed, "--checkpoint", str(tmp_path / "missing"), "--log-key-pub",
                       key.verifier.text)
    assert bad_file.exit_code == 2


def test_without_a_key_the_registry_signs_no_checkpoint(registry: Registry) -> None:
    r = registry.client.get("/api/v1/log/checkpoint")
    assert r.status_code == 404 and r.json()["error"]["code"] == "LOG_NOT_SIGNED"
    # The log still grows and proves.
    registry.token()
    proof = registry.client.get("/api/v1/log/proof/inclusion", params={"index": 0, "size": 1})
    assert proof.status_code == 200 and proof.json()["hashes"] == []


# --------------------------------------------------------------------- the four tampers


def test_deleting_the_newest_entry_and_moving_the_head_back_is_caught(
        signed: Registry, tmp_path: Path, log_key: tuple[NoteSigner, Path]) -> None:
    key, _ = log_key
    tokens = _activity(signed)
    cp = tmp_path / "cp"
    _save_checkpoint(signed, cp)
    with signed.store.engine.begin() as c:
        # Hide the newest act completely: its entry and the row it wrote.
        c.execute(text("DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)"))
        c.execute(text("DELETE FROM api_token WHERE token_id = :t"), {"t": tokens["reviewer"]})
    _rebuild(signed.store.engine)
    # The chain, the tree and the state agree with each other: only a checkpoint kept
    # elsewhere can tell (documented).
    assert _verify(signed).exit_code == 0
    caught = _verify(signed, *_key_args(key, cp))
    assert caught.exit_code == 1, caught.output
    assert "has 4 entries but a checkpoint of 5 entries was seen earlier" in caught.output


def test_emptying_the_log_and_resetting_the_head_is_caught(
        signed: Registry, tmp_path: Path, log_key: tuple[NoteSigner, Path]) -> None:
    key, _ = log_key
    _activity(signed)
    cp = tmp_path / "cp"
    _save_checkpoint(signed, cp)
    with signed.store.engine.begin() as c:
        c.execute(text("DELETE FROM audit_log"))
    _rebuild(signed.store.engine)
    caught = _verify(signed, *_key_args(key, cp))
    assert caught.exit_code == 1, caught.output
    assert "has 0 entries but a checkpoint of 5 entries" in caught.output
    # Even without a checkpoint, the replay finds rows no entry wrote.
    alone = _verify(signed)
    assert alone.exit_code == 1
    assert "no audit entry wrote it" in alone.output


def test_editing_entries_and_recomputing_every_hash_is_caught(
        signed: Registry, tmp_path: Path, log_key: tuple[NoteSigner, Path]) -> None:
    """The attacker makes the publisher token an admin and rewrites history so it always was:
    the row, the entry's after and effects, then every hash, the head and the tree."""
    key, _ = log_key
    tokens = _activity(signed)
    cp = tmp_path / "cp"
    _save_checkpoint(signed, cp)
    with signed.store.engine.begin() as c:
        c.execute(text("UPDATE api_token SET role = 'admin' WHERE token_id = :t"),
                  {"t": tokens["publisher"]})
        c.execute(text("UPDATE audit_log SET after_json = REPLACE(after_json, "
                       "'\"role\":\"publisher\"', '\"role\":\"admin\"'), effects_json = "
                       "REPLACE(effects_json, '\"role\":\"publisher\"', '\"role\":\"admin\"') "
                       "WHERE id = 1"))
    _rebuild(signed.store.engine)
    assert _verify(signed).exit_code == 0  # a consistent forgery, short of a checkpoint
    caught = _verify(signed, *_key_args(key, cp))
    assert caught.exit_code == 1, caught.output
    assert "the first 5 entries do not match the checkpoint" in caught.output
    assert "rewritten" in caught.output


@pytest.mark.parametrize("edit", ["token-admin", "tier-verified", "document", "token-secret",
                                  "token-inserted", "revocation-deleted", "evidence-edited"])
def test_direct_edits_of_state_tables_are_caught(signed: Registry, tmp_path: Path,
                                                 log_key: tuple[NoteSigner, Path],
                                                 edit: str) -> None:
    key, _ = log_key
    tokens = _activity(signed)
    cp = tmp_path / "cp"
    _save_checkpoint(signed, cp)
    statements = {
        "token-admin": ("UPDATE api_token SET role = 'admin' WHERE token_id = :t",
                        f"api_token {tokens['publisher']} differs from the log (role: logged "
                        '"publisher", stored "admin")'),
        "tier-verified": ("UPDATE plugin_version SET tier = 'verified', action = 'allow' "
                          "WHERE version = '1.1.0'",
                          "plugin_version acme/hello@1.1.0 differs from the log (action"),
        "document": ("UPDATE plugin_version SET document_json = REPLACE(document_json, "
                     "'\"tier\":\"', '\"tier\":\"verified') WHERE version = '1.1.0'",
                     "plugin_version acme/hello@1.1.0 differs from the log (rendered"),
        "token-secret": ("UPDATE api_token SET token_hash = 'aa' WHERE token_id = :t",
                         f"api_token {tokens['publisher']} differs from the log (secret"),
        "token-inserted": ("INSERT INTO api_token (token_id, token_hash, namespace, role, "
                           "created_at, expires_at, revoked) VALUES ('tok_000000000000', 'bb', "
                           "'acme', 'admin', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', "
                           "false)",
                           "api_token tok_000000000000 is in the database but no audit entry "
                           "wrote it"),
        "revocation-deleted": ("DELETE FROM revocation",
                               "was written by the log but is missing from the database"),
        "evidence-edited": ("UPDATE evidence SET facts_json = facts_json || ' ' "
                            "WHERE id = (SELECT MIN(id) FROM evidence)",
                            "differs from the log (facts"),
    }
    sql, expected = statements[edit]
    with signed.store.engine.begin() as c:
        c.execute(text(sql), {"t": tokens["publisher"]})
    for args in ([], _key_args(key, cp)):
        caught = _verify(signed, *args)
        assert caught.exit_code == 1, caught.output
        assert expected in caught.output, caught.output
        assert "was tampered with" in caught.output


def test_edits_after_a_retier_are_caught(signed: Registry, tmp_path: Path,
                                         log_key: tuple[NoteSigner, Path]) -> None:
    """Re-tiering rewrites every version without the ORM; its entry records what it wrote, so
    the replay still holds the tables to the log afterwards."""
    import shutil

    from cli.main import app
    from tests.registry.conftest import POLICY_DIR

    key, _ = log_key
    _activity(signed)
    policy = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, policy)
    data = json.loads((policy / "data.json").read_text())
    data["cortex"]["actions"]["experimental"] = "notice"
    (policy / "data.json").write_text(json.dumps(data))
    r = CliRunner().invoke(app, ["registry", "retier", "--db", signed.db_url, "--workers", "0", "--in-process",
                                 "--no-default-policies", "--policy-dir", str(policy),
                                 "--data", str(policy / "data.json")])
    assert r.exit_code == 0, r.output
    cp = tmp_path / "cp"
    _save_checkpoint(signed, cp)
    assert _verify(signed, *_key_args(key, cp)).exit_code == 0
    with signed.store.engine.begin() as c:
        c.execute(text("UPDATE plugin_version SET action = 'allow' WHERE version = '1.1.0'"))
    caught = _verify(signed, *_key_args(key, cp))
    assert caught.exit_code == 1
    assert 'acme/hello@1.1.0 differs from the log (action: logged "notice", stored "allow")' \
        in caught.output


# ------------------------------------------------------------------ proofs over HTTP


def test_served_proofs_verify_on_the_client(signed: Registry,
                                            log_key: tuple[NoteSigner, Path]) -> None:
    """A client checks a version's publish leaf and the revocation feed's leaves against a
    checkpoint it verified, and later checkpoints against earlier ones."""
    from cortex_trust.sources import RegistryClient

    key, _ = log_key
    _activity(signed)
    client = RegistryClient("http://testserver", transport=signed.client._transport)
    first = open_checkpoint(client.log_checkpoint(), key.verifier)
    assert first.size == 5
    log = client.version_log("acme", "hello", "1.1.0")
    assert log.publish is not None and not log.revocations
    leaf = log.publish.leaf.encode()
    verify_inclusion(index=log.publish.index, size=first.size, leaf=leaf_hash(leaf),
                     proof=client.log_inclusion(log.publish.index, first.size), root=first.root)
    effects = json.loads(json.loads(leaf)["effects"])
    assert effects["plugin_version"]["acme/hello@1.1.0"]["digest"] == WHEEL_DIGEST
    # A tampered leaf or a proof for another leaf does not verify.
    with pytest.raises(ProofError):
        verify_inclusion(index=log.publish.index, size=first.size,
                         leaf=leaf_hash(leaf.replace(b"hello", b"hallo")),
                         proof=client.log_inclusion(log.publish.index, first.size), root=first.root)
    # The revocation feed names its leaf; the version's log lists it too.
    feed = signed.client.get("/api/v1/revocations").json()["items"]
    revoked = client.version_log("acme", "hello", "1.0.0")
    assert [r.index for r in revoked.revocations] == [feed[0]["log_index"]]
    verify_inclusion(index=feed[0]["log_index"], size=first.size,
                     leaf=leaf_hash(revoked.revocations[0].leaf.encode()),
                     proof=client.log_inclusion(feed[0]["log_index"], first.size), root=first.root)
    # The log grows; the new checkpoint provably extends the first.
    signed.token("acme", "installation")
    second = open_checkpoint(client.log_checkpoint(), key.verifier)
    assert second.size == 6
    for m in range(0, 6):
        proof = client.log_consistency(m, second.size)
        if m == first.size:
            verify_consistency(first=m, second=second.size, first_root=first.root,
                               second_root=second.root, proof=proof)
    with pytest.raises(ProofError):
        verify_consistency(first=first.size, second=second.size, first_root=second.root,
                           second_root=second.root, proof=client.log_consistency(5, 6))
    client.close()


def test_log_routes_refuse_what_the_log_does_not_have(signed: Registry) -> None:
    acme = signed.token()
    for path, params in (("/api/v1/log/proof/inclusion", {"index": 1, "size": 1}),
                         ("/api/v1/log/proof/inclusion", {"index": 0, "size": 2}),
                         ("/api/v1/log/proof/consistency", {"first": 2, "second": 1}),
                         ("/api/v1/log/proof/consistency", {"first": 0, "second": 9})):
        r = signed.client.get(path, params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "BAD_LOG_RANGE", r.text
    assert signed.client.get("/api/v1/plugins/acme/nope/versions/1.0.0/log").status_code == 404
    # Full entries hold operator data: admin only.
    assert signed.client.get("/api/v1/log/entries", params={"start": 0, "end": 1}).status_code == 401
    r = signed.client.get("/api/v1/log/entries", params={"start": 0, "end": 1},
                          headers=signed.auth(acme))
    assert r.status_code == 403
    admin = signed.token("ops", "admin")
    r = signed.client.get("/api/v1/log/entries", params={"start": 0, "end": 5},
                          headers=signed.auth(admin))
    assert r.status_code == 200
    entries = r.json()["entries"]
    assert [e["index"] for e in entries] == [0, 1]
    assert json.loads(entries[1]["leaf"])["action"] == "token.create"
    assert signed.client.get("/api/v1/log/entries", params={"start": 0, "end": 500},
                             headers=signed.auth(admin)).status_code == 422


def test_checkpoint_signature_and_format(signed: Registry, log_key: tuple[NoteSigner, Path]) -> None:
    key, _ = log_key
    signed.token()
    note = signed.client.get("/api/v1/log/checkpoint").text
    body, sig = note.split("\n\n")
    origin, size, root = body.split("\n")
    assert (origin, size) == (ORIGIN, "1")
    assert len(base64.b64decode(root)) == 32
    assert sig.startswith(f"\u2014 {ORIGIN} ") and sig.endswith("\n")
    assert base64.b64decode(sig.split(" ")[2])[:4] == key.key_id


# ---------------------------------------------------------------------------- the upgrade


def test_upgrading_a_registry_records_its_rows_as_a_baseline(signed: Registry) -> None:
    """A registry from before the transparency log (entries without effects, no tree) is
    upgraded: every entry becomes a leaf, the rows as they stand are recorded by log.baseline
    entries, and the log verifies, with each version's leaf its baseline entry."""
    from registry import make_engine, migrate
    from registry._audit import GENESIS, entry_body
    from registry._store import Store

    tokens = _activity(signed)
    engine = make_engine(signed.db_url)
    migrator(engine)("0011", "downgrade")
    with engine.begin() as c:  # the chain as the old code wrote it: no effects in the hashes
        prev = GENESIS
        for r in c.execute(text("SELECT id, actor, action, target, before_json, after_json, at "
                                "FROM audit_log ORDER BY id")).mappings().all():
            h = hashlib.sha256(entry_body(prev_hash=prev, **r)).hexdigest()
            c.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                      {"p": prev, "h": h, "i": r["id"]})
            prev = h
        c.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    migrate(engine)
    store = Store(engine)
    report = store.audit_report()
    assert report.problems == []
    assert report.size == 5 + 2 + 2  # 5 entries, then one per token and per version
    assert any("log.baseline" in n for n in report.notes)
    with engine.connect() as c:
        actions = [r[0] for r in c.execute(text("SELECT action FROM audit_log ORDER BY id"))]
        indexes = dict(c.execute(text("SELECT version, log_index FROM plugin_version")).all())
    assert actions[5:] == ["log.baseline"] * 4
    leaves = store.log.version_leaves("acme", "hello", "1.0.0")
    assert leaves is not None and leaves["publish"]["index"] == indexes["1.0.0"]
    assert json.loads(leaves["publish"]["leaf"])["target"] == "acme/hello@1.0.0"
    # From here on the replay covers the upgraded rows like any other.
    with engine.begin() as c:
        c.execute(text("UPDATE api_token SET role = 'admin' WHERE token_id = :t"),
                  {"t": tokens["publisher"]})
    assert any("role" in p.problem for p in store.audit_verify())
    engine.dispose()


# ------------------------------------------------------------------ keys and a real server


def test_log_key_files_are_created_private_and_checked(tmp_path: Path) -> None:
    from cortex_trust.sources import NoteVerifier
    from tests.registry.test_serve import _cortex

    path = tmp_path / "log.key"
    made = _cortex("registry", "log-key", "create", str(path), "--name", ORIGIN)
    assert made.returncode == 0, made.stderr
    verifier = NoteVerifier.from_text(made.stdout.strip())
    assert verifier.name == ORIGIN
    assert path.stat().st_mode & 0o777 == 0o600
    assert NoteSigner.from_text(path.read_text()).verifier == verifier
    assert _cortex("registry", "log-key", "show", str(path)).stdout.strip() == verifier.text
    again = _cortex("registry", "log-key", "create", str(path))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert _cortex("registry", "log-key", "create", str(tmp_path / "k2"), "--name",
                   "has space").returncode == 2
    path.chmod(0o644)
    loose = _cortex("registry", "serve", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                    "--log-key", str(path))
    assert loose.returncode == 2 and "chmod 600" in loose.stderr
    link = tmp_path / "link.key"
    link.symlink_to(path)
    path.chmod(0o600)
    assert _cortex("registry", "log-key", "show", str(link)).returncode == 2


def test_a_served_registry_signs_checkpoints_that_audit_verify_fetches(tmp_path: Path) -> None:
    import httpx

    from tests.registry.conftest import FIXTURES, POLICY_DIR
    from tests.registry.test_serve import _cortex
    from tests.support.served_registry import serve_registry

    key_file = tmp_path / "log.key"
    vkey = _cortex("registry", "log-key", "create", str(key_file), "--name", ORIGIN).stdout.strip()
    with serve_registry(tmp_path, "--no-scan", "--no-default-policies", "--policy-dir",
                        str(POLICY_DIR), "--data", str(POLICY_DIR / "data.json"),
                        "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"),
                        env={**os.environ, "CORTEX_REGISTRY_LOG_KEY_FILE": str(key_file)}) as server:
        url, db = server.url, server.db
        assert _cortex("registry", "token", "create", "--namespace", "acme", "--role",
                       "publisher", "--db", db).returncode == 0
        from cortex_trust.sources import NoteVerifier

        cp = open_checkpoint(httpx.get(f"{url}/api/v1/log/checkpoint").content,
                             NoteVerifier.from_text(vkey))
        assert cp.size == 1
        ok = _cortex("registry", "audit", "verify", "--db", db, "--checkpoint",
                     f"{url}/api/v1/log/checkpoint", "--log-key-pub", vkey)
        assert ok.returncode == 0, ok.stderr
        assert "extends the checkpoint of 1 entry\n" in ok.stderr
    assert "audit log checkpoints signed by registry.test/audit" in server.log.read_text()


def test_audit_verify_and_token_list_show_planted_escapes_inert(signed: Registry) -> None:
    # An attacker with the database plants a token whose id hides what follows on a terminal
    # (ESC[8m: concealed text); the verdict must stay readable and the exit code says tampered.
    from cli.main import app

    _activity(signed)
    planted = "tok_\x1b[8mhidden"
    with signed.store.engine.begin() as c:
        c.execute(text("INSERT INTO api_token (token_id, token_hash, namespace, role, created_at, "
                       "expires_at, revoked) VALUES (:t, 'bb', 'acme', 'admin', "
                       "'2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', false)"), {"t": planted})
    caught = _verify(signed)
    assert caught.exit_code == 1, caught.output
    assert "\x1b" not in caught.output and "tok_\\x1b[8mhidden" in caught.output
    assert "was tampered with" in caught.output
    listed = CliRunner().invoke(app, ["registry", "token", "list", "--db", signed.db_url])
    assert "\x1b" not in listed.output and "tok_\\x1b[8mhidden" in listed.output, listed.output
