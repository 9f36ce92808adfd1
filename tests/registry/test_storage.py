"""Schema migrations and re-tiering the catalogue after a policy change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.registry.conftest import POLICY_DIR, Registry, migration_steps


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import registry._models  # noqa: F401
    from registry import make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_bad_database_urls_are_input_errors() -> None:
    from cortex_trust.errors import InputError
    from registry import make_engine

    for url in ("mysql://x/y", "not a url", "http://example.com/db"):
        with pytest.raises(InputError):
            make_engine(url)


def _policy_variant(tmp_path: Path, **actions: str) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, target)
    data = json.loads((target / "data.json").read_text())
    data["cortex"]["actions"].update(actions)
    (target / "data.json").write_text(json.dumps(data))
    return target


def test_retier_reevaluates_everything_without_redoing_cryptography(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    acme = registry.token()
    for i in range(3):
        assert registry.publish(acme, name=f"tool-{i}").status_code == 201
    _, before = registry.get("/api/v1/plugins/acme/tool-0/versions/1.0.0")
    assert before["action"] == "warn"

    import cortex_trust.evidence as signature  # the name registry._service looks up at call time

    def no_crypto(*_a: object, **_k: object) -> None:
        raise AssertionError("retier must reuse stored signature facts")

    monkeypatch.setattr(signature, "verify_signature", no_crypto)
    policy = _policy_variant(tmp_path, experimental="notice")
    result = CliRunner().invoke(app, ["registry", "retier", "--db", registry.db_url, "--in-process",
                                      "--no-default-policies", "--policy-dir", str(policy),
                                      "--data", str(policy / "data.json")])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["versions"] == 3 and counts["changed"] == 3
    _, after = registry.get("/api/v1/plugins/acme/tool-0/versions/1.0.0")
    assert after["action"] == "notice" and after["tier"] == "experimental"
    assert after["policy_revision"] == counts["policy_revision"] != before["policy_revision"]
    assert after["evidence"]["signature"] == before["evidence"]["signature"]
    _, plugin = registry.get("/api/v1/plugins/acme/tool-0")
    assert plugin["action"] == "notice"
    assert registry.store.audit_verify() == []


def test_cli_migrate_creates_the_schema(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    from cli.main import app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(app, ["registry", "migrate", "--db", url])
    assert result.exit_code == 0, result.output
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"plugin", "plugin_version", "evidence", "api_token", "revocation", "audit_log",
            "audit_head", "scan_job", "usage_day", "review", "namespace",
            "alembic_version"} <= tables


def test_the_bundle_table_migration_keeps_every_bundle(registry: Registry) -> None:
    """0008 moves each version's bundle out of the version row (re-tiering rewrites that row)
    and its downgrade moves it back; a bundle survives the round trip byte for byte."""
    from sqlalchemy import inspect, text

    acme = registry.token()
    assert registry.publish(acme, name="bundled").status_code == 201
    path = "/api/v1/plugins/acme/bundled/versions/1.0.0/bundle"
    before = registry.client.get(path)
    assert before.status_code == 200 and len(before.content) > 1000

    engine, to = migration_steps(registry.db_url)

    try:
        to("0007", "downgrade")
        with engine.connect() as conn:
            assert "version_bundle" not in inspect(conn).get_table_names()
            stored = conn.execute(text("SELECT bundle_json FROM plugin_version")).scalar_one()
        assert json.loads(stored) == before.json()
        to("head", "upgrade")
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("plugin_version")}
        assert "bundle_json" not in columns
    finally:
        engine.dispose()
    after = registry.client.get(path)
    assert after.status_code == 200 and after.content == before.content


def test_the_review_and_usage_migration_keeps_every_reviewers_review(registry: Registry) -> None:
    """0011 keeps one review per reviewer (each reviewer's newest of the old evidence rows)
    and one usage row per installation and day (the first and last day an installation
    reported); its downgrade goes back to evidence rows and one row per installation. Reviews
    and usage survive the round trip, and the old rows' newest-wins shape is split per
    reviewer on the way up."""
    from sqlalchemy import inspect, text

    base = "/api/v1/plugins/acme/hello/versions/1.0.0"
    usage = {"namespace": "acme", "name": "hello", "version": "1.0.0",
             "digest": "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"}
    assert registry.publish(registry.token()).status_code == 201
    ada = registry.token("cortex-core", "reviewer", holder="ada")
    bob = registry.token("partner", "reviewer", holder="bob")
    initech = registry.token("initech", "installation")
    globex = registry.token("globex", "installation")
    for token, status in ((ada, "approved"), (bob, "rejected")):
        r = registry.client.post(f"{base}/reviews", json={"status": status},
                                 headers=registry.auth(token))
        assert r.status_code == 200, r.text
    for token in (initech, globex):
        registry.client.post("/api/v1/usage", json=usage, headers=registry.auth(token))
    registry.clock.advance(days=3)
    r = registry.client.post("/api/v1/usage", json=usage, headers=registry.auth(initech))
    before = r.json()["evidence"]
    assert before["usage"]["active_days"] == 2 and before["usage"]["organizations"] == 2

    engine, to = migration_steps(registry.db_url)

    try:
        to("0010", "downgrade")
        with engine.begin() as conn:
            tables = set(inspect(conn).get_table_names())
            assert "review" not in tables and "usage_day" not in tables
            reviews = conn.execute(text("SELECT facts_json FROM evidence WHERE kind = 'review' "
                                        "ORDER BY id")).scalars().all()
            assert [(json.loads(f)["reviewer"], json.loads(f)["status"]) for f in reviews] == [
                ("cortex-core/ada", "approved"), ("partner/bob", "rejected")]
            reports = conn.execute(text("SELECT first_seen, last_seen FROM usage_report "
                                        "ORDER BY id")).all()
            assert [tuple(r) for r in reports] == [
                ("2026-01-01T12:00:00Z", "2026-01-04T12:00:00Z"),
                ("2026-01-01T12:00:00Z", "2026-01-01T12:00:00Z")]
            # What the old registry wrote when ada changed her mind: a newer row of hers.
            facts = json.loads(reviews[0])
            conn.execute(text(
                "INSERT INTO evidence (version_id, kind, digest, facts_json, actor, created_at) "
                "SELECT version_id, kind, digest, :facts, actor, created_at FROM evidence "
                "WHERE kind = 'review' ORDER BY id LIMIT 1"),
                {"facts": json.dumps({**facts, "status": "changes_requested"})})
        to("head", "upgrade")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT reviewer, verdict FROM review ORDER BY reviewer"))
            assert [tuple(r) for r in rows] == [("cortex-core/ada", "changes_requested"),
                                                ("partner/bob", "rejected")]
            assert conn.execute(text("SELECT COUNT(*) FROM evidence WHERE kind = 'review'")
                                ).scalar_one() == 0
            days = conn.execute(text("SELECT organization, day FROM usage_day ORDER BY id"))
            assert [tuple(r) for r in days] == [("initech", "2026-01-01"),
                                                ("initech", "2026-01-04"),
                                                ("globex", "2026-01-01")]
    finally:
        engine.dispose()
    r = registry.client.post(f"{base}/reviews", json={"status": "rejected"},
                             headers=registry.auth(bob))  # a write: re-evaluates
    after = r.json()["evidence"]
    assert sorted((x["reviewer"], x["verdict"]) for x in after["review"]["reviews"]) == [
        ("cortex-core/ada", "changes_requested"), ("partner/bob", "rejected")]
    assert after["usage"] == before["usage"]
