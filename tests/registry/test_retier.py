"""Re-tiering the catalogue on threads that each hold one policy engine process (registry._retier).

Real engine processes (spawned), real regorus, real databases (SQLite, and PostgreSQL when
CORTEX_TEST_PG_URL is set). Every failure mode is asserted on the reason code the stored
decision carries: a crashed, killed or hung engine process blocks exactly the versions it held with
ENGINE_ERROR / ENGINE_TIMEOUT, never an allow and never a stale decision.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import A_TXT_DIGEST, POLICY_DIR, Registry

RECURSE_ON_TOOL_1 = """\
# The engine overflows the native stack (the process dies) for plugin tool-1 only.
package cortex

import rego.v1

loop(x) := y if {
	y := loop(x + 1)
}

deny contains entry if {
	input.plugin.name == "tool-1"
	entry := {"code": "LOOP", "message": sprintf("%v", [loop(1)])}
}
"""

SLOW = """\
# 25 million iterations per decision: far longer than any test timeout.
package cortex

import rego.v1

deny contains {"code": "SLOW", "message": "slow"} if {
	every i in numbers.range(1, 5000) {
		every j in numbers.range(1, 5000) {
			i + j > 0
		}
	}
}
"""

BUILTIN_ERROR = """\
# A builtin error: the interpreter raises, decide() blocks (the worker survives).
package cortex

import rego.v1

deny contains {"code": "BAD", "message": sprintf("%v", [to_number("not a number")])} if {
	input.plugin.name == "tool-1"
}
"""


def _policy_dir(target: Path, extra: str | None = None, **actions: str) -> Path:
    """A copy of the registry tests' policy at ``target``, with other actions per tier and an
    extra module."""
    shutil.copytree(POLICY_DIR, target)
    if actions:
        data = json.loads((target / "data.json").read_text())
        data["cortex"]["actions"].update(actions)
        (target / "data.json").write_text(json.dumps(data))
    if extra is not None:
        (target / "cortex" / "extra.rego").write_text(extra)
    return target


def _policy(tmp_path: Path, extra: str | None = None, **actions: str) -> Any:
    from cortex_trust.policy import load_policy_set

    target = _policy_dir(tmp_path / "policy", extra, **actions)
    return load_policy_set([target], [target / "data.json"], defaults=False)


def _catalogue(registry: Registry, n: int = 3) -> None:
    acme = registry.token()
    for i in range(n):
        assert registry.publish(acme, name=f"tool-{i}").status_code == 201


def _versions(registry: Registry) -> dict[str, dict[str, Any]]:
    out = {}
    for i in range(10):
        status, doc = registry.get(f"/api/v1/plugins/acme/tool-{i}/versions/1.0.0")
        if status == 404:
            break
        out[f"tool-{i}"] = doc
    return out


def _retier(registry: Registry, policy_set: Any, **kw: Any) -> tuple[dict[str, Any], Any]:
    from registry import make_engine
    from registry._retier import LocalDeciders
    from registry._store import Store

    batch = kw.pop("_batch", 500)
    engine = make_engine(registry.db_url)
    try:
        with LocalDeciders(policy_set, **kw) as deciders:
            result = Store(engine).retier_all(now=registry.clock(), deciders=deciders, batch=batch)
            return result, deciders.stats
    finally:
        engine.dispose()


def test_all_is_pinned() -> None:
    import registry._reevaluate as r
    import registry._retier as m

    assert sorted(m.__all__) == ["Decider", "Job", "LocalDeciders", "RetierFailed", "RetierStats",
                                 "policy_from_json", "policy_to_json", "usable_cpus"]
    assert sorted(r.__all__) == ["ITEM_COLUMNS", "Item", "Outcome", "ReporterFacts", "ThreadEvaluator",
                                 "UsageFacts", "build_inputs", "decide_batch", "evaluate_items",
                                 "item_from_row", "receipt_payload_of", "render_outcome", "stored_input",
                                 "version_input"]


def test_unchanged_policy_at_the_same_time_changes_nothing(registry: Registry,
                                                         tmp_path: Path) -> None:
    """Re-tiering renders exactly what the single-version writes rendered (same inputs, same
    documents, byte for byte), whatever evidence a version has."""
    acme = registry.token()
    reviewer = registry.token("cortex", "reviewer")
    installation = registry.token("acme", "installation")
    for i in range(4):
        assert registry.publish(acme, name=f"tool-{i}").status_code == 201
    base = "/api/v1/plugins/acme/tool-{}/versions/1.0.0"
    r = registry.client.post(base.format(1) + "/reviews", json={"status": "approved"},
                             headers=registry.auth(reviewer))
    assert r.status_code == 200, r.text
    r = registry.client.post(base.format(2) + "/revoke", json={"reason": "leaked key"},
                             headers=registry.auth(acme))
    assert r.status_code == 200, r.text
    r = registry.client.post("/api/v1/usage", headers=registry.auth(installation), json={
        "namespace": "acme", "name": "tool-3", "version": "1.0.0", "digest": A_TXT_DIGEST})
    assert r.status_code == 200, r.text
    assert r.json()["evidence"]["usage"]["present"] is True
    before = {k: registry.client.get(base.format(k[-1])).content for k in _versions(registry)}
    plugin_before = registry.client.get("/api/v1/plugins/acme/tool-1").content
    policy = _policy(tmp_path)
    result, stats = _retier(registry, policy, workers=2, registry_name="cortex-registry")
    assert result == {"versions": 4, "changed": 0, "failed": 0,
                      "policy_revision": policy.revision}
    assert stats.workers == 2 and stats.batches >= 1 and stats.crashes == 0
    after = {k: registry.client.get(base.format(k[-1])).content for k in before}
    assert after == before
    assert registry.client.get("/api/v1/plugins/acme/tool-1").content == plugin_before
    assert registry.store.audit_verify() == []


def test_policy_change_moves_tiers_and_refreshes_plugins(registry: Registry,
                                                         tmp_path: Path) -> None:
    _catalogue(registry, 5)
    policy = _policy(tmp_path, experimental="notice")
    result, stats = _retier(registry, policy, workers=2, _batch=2)
    assert result["versions"] == 5 and result["changed"] == 5 and result["failed"] == 0
    assert stats.batches == 3
    for doc in _versions(registry).values():
        assert (doc["tier"], doc["action"]) == ("experimental", "notice")
        assert doc["decision"]["policy_revision"] == policy.revision
    _, plugin = registry.get("/api/v1/plugins/acme/tool-4")
    assert plugin["action"] == "notice" and plugin["latest_version"] == "1.0.0"
    _, listing = registry.get("/api/v1/plugins")
    assert {p["action"] for p in listing["items"]} == {"notice"}


def test_a_crashing_policy_blocks_only_the_version_it_crashes_on(registry: Registry,
                                                                 tmp_path: Path) -> None:
    _catalogue(registry, 3)
    result, stats = _retier(registry, _policy(tmp_path, RECURSE_ON_TOOL_1), workers=1)
    assert result["failed"] == 1 and stats.crashes >= 1 and stats.restarts >= 1
    docs = _versions(registry)
    crashed = docs["tool-1"]
    assert (crashed["tier"], crashed["action"]) == ("untrusted", "block")
    assert crashed["decision"]["failed"] is True
    assert [r["code"] for r in crashed["decision"]["reasons"]] == ["ENGINE_ERROR"]
    assert "crashed" in crashed["decision"]["reasons"][0]["message"]
    for name in ("tool-0", "tool-2"):  # the batch was split: the others were decided
        assert docs[name]["decision"]["failed"] is False
        assert docs[name]["action"] != "block"
    _, plugin = registry.get("/api/v1/plugins/acme/tool-1")
    assert plugin["action"] == "block"


def test_when_restarts_are_spent_whole_batches_block(registry: Registry,
                                                     tmp_path: Path) -> None:
    _catalogue(registry, 3)
    result, stats = _retier(registry, _policy(tmp_path, RECURSE_ON_TOOL_1), workers=1,
                            max_restarts=0)
    assert result["failed"] == 3 and stats.crashes == 1 and stats.restarts == 0
    for doc in _versions(registry).values():
        assert doc["action"] == "block" and doc["decision"]["failed"] is True
        assert doc["decision"]["reasons"][0]["code"] == "ENGINE_ERROR"


def test_a_killed_worker_blocks_its_batch(registry: Registry, tmp_path: Path) -> None:
    from registry import make_engine
    from registry._retier import LocalDeciders
    from registry._store import Store

    _catalogue(registry, 2)
    engine = make_engine(registry.db_url)
    with LocalDeciders(_policy(tmp_path, SLOW), workers=1, max_restarts=0,
                       timeout=120) as deciders:
        deciders.start()
        victim = deciders.pids[0]

        def kill_soon() -> None:
            import os
            import signal

            time.sleep(1.0)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_soon)
        killer.start()
        started = time.monotonic()
        result = Store(engine).retier_all(now=registry.clock(), deciders=deciders)
        killer.join()
    engine.dispose()
    assert time.monotonic() - started < 60
    assert result["failed"] == 2 and deciders.stats.crashes == 1
    for doc in _versions(registry).values():
        assert doc["action"] == "block"
        assert [r["code"] for r in doc["decision"]["reasons"]] == ["ENGINE_ERROR"]


def test_a_hung_worker_times_out_and_blocks(registry: Registry, tmp_path: Path) -> None:
    _catalogue(registry, 2)
    started = time.monotonic()
    result, stats = _retier(registry, _policy(tmp_path, SLOW), workers=1, timeout=1.0)
    assert time.monotonic() - started < 60
    assert result["failed"] == 2 and stats.timeouts == 1
    for doc in _versions(registry).values():
        assert doc["action"] == "block"
        assert [r["code"] for r in doc["decision"]["reasons"]] == ["ENGINE_TIMEOUT"]


def test_a_builtin_error_blocks_that_version_without_a_crash(registry: Registry,
                                                             tmp_path: Path) -> None:
    _catalogue(registry, 3)
    result, stats = _retier(registry, _policy(tmp_path, BUILTIN_ERROR), workers=1)
    assert result["failed"] == 1 and stats.crashes == 0
    docs = _versions(registry)
    assert docs["tool-1"]["decision"]["reasons"][0]["code"] == "ENGINE_ERROR"
    assert docs["tool-0"]["decision"]["failed"] is False


def test_corrupt_stored_facts_abort_the_run_and_change_nothing(registry: Registry,
                                                               tmp_path: Path) -> None:
    from sqlalchemy import text

    from registry import make_engine
    from registry._retier import RetierFailed

    _catalogue(registry, 3)
    before = {k: json.dumps(v, sort_keys=True) for k, v in _versions(registry).items()}
    engine = make_engine(registry.db_url)
    with engine.begin() as conn:  # the last version's stored input no longer validates
        conn.execute(text("UPDATE plugin_version SET input_json = '{}' WHERE id = "
                          "(SELECT max(id) FROM plugin_version)"))
    engine.dispose()
    with pytest.raises(RetierFailed):
        # Batches of one: the first two are written inside the transaction before the third
        # fails; the rollback must take them back.
        _retier(registry, _policy(tmp_path, experimental="notice"), workers=1, _batch=1)
    after = {k: json.dumps(v, sort_keys=True) for k, v in _versions(registry).items()}
    assert after == before
    assert registry.store.audit_verify() == []


def test_in_process_mode_decides_the_same(registry: Registry, tmp_path: Path) -> None:
    _catalogue(registry, 2)
    result, stats = _retier(registry, _policy(tmp_path, experimental="notice"), workers=0)
    assert result["changed"] == 2 and stats.workers == 0
    assert {d["action"] for d in _versions(registry).values()} == {"notice"}


def test_a_policy_that_does_not_load_fails_before_anything_changes(registry: Registry,
                                                                   tmp_path: Path) -> None:
    from cortex_trust.errors import PolicyError

    _catalogue(registry, 1)
    with pytest.raises(PolicyError):
        _retier(registry, _policy(tmp_path, "package cortex\n\ndeny contains {{{"), workers=1)


def test_out_of_step_answers_are_never_stored() -> None:
    """An answer for another batch or with a wrong number of decisions is refused."""
    from registry._retier import Outcome, _valid_reply

    one = Outcome("verified", "allow", "sha256:x", "{}", "{}", "{}", False)
    assert _valid_reply(("ok", 7, [one] * 3, (0.0, 0.0, 0.0)), seq=7, n=3)
    assert not _valid_reply(("ok", 6, [one] * 3, (0.0, 0.0, 0.0)), seq=7, n=3)
    assert not _valid_reply(("ok", 7, [one] * 2, (0.0, 0.0, 0.0)), seq=7, n=3)
    assert not _valid_reply(("ok", 7, [one, one, ("verified", "allow")], (0.0, 0.0, 0.0)),
                            seq=7, n=3)
    assert not _valid_reply(("ok", 7, "xyz", (0.0, 0.0, 0.0)), seq=7, n=3)
    assert not _valid_reply(("ready", "compiled"), seq=7, n=3)


def test_an_empty_catalogue_is_one_audited_no_op(registry: Registry, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    result, stats = _retier(registry, policy, workers=1)
    assert result == {"versions": 0, "changed": 0, "failed": 0,
                      "policy_revision": policy.revision}
    assert stats.batches == 0
    assert registry.store.audit_verify() == []


def test_cli_reports_undecidable_versions_with_exit_3(registry: Registry, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    _catalogue(registry, 2)
    target = tmp_path / "crash"
    shutil.copytree(POLICY_DIR, target)
    (target / "cortex" / "extra.rego").write_text(RECURSE_ON_TOOL_1)
    result = CliRunner().invoke(app, ["registry", "retier", "--db", registry.db_url, "--in-process",
                                      "--no-default-policies", "--policy-dir", str(target),
                                      "--data", str(target / "data.json"), "--workers", "1"])
    assert result.exit_code == 3, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["versions"] == 2 and counts["failed"] == 1
    assert _versions(registry)["tool-1"]["decision"]["reasons"][0]["code"] == "ENGINE_ERROR"


def test_cli_refuses_a_negative_worker_count(registry: Registry) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["registry", "retier", "--db", registry.db_url, "--workers", "-1"])
    assert result.exit_code == 2 and "--workers must be 0" in result.stderr


# ------------------------------------------------------------------------------ what-if (dry run)

BAN_TOOL_1 = """\
package cortex

import rego.v1

deny contains {"code": "TOOL_ONE_BANNED", "message": "tool-1 is banned here"} if {
	input.plugin.name == "tool-1"
}
"""


def _dry_run(registry: Registry, tmp_path: Path, *args: str, extra: str | None = None,
             **actions: str) -> Any:
    from typer.testing import CliRunner

    from cli.main import app

    target = _policy_dir(tmp_path / "whatif", extra, **actions)
    return CliRunner().invoke(app, ["registry", "retier", "--db", registry.db_url, "--dry-run",
                                    "--no-default-policies", "--policy-dir", str(target),
                                    "--data", str(target / "data.json"), "--workers", "1", *args])


def _snapshot(registry: Registry) -> tuple[Any, ...]:
    """Every read document and the log's checkpoint: what a dry run must leave as it was."""
    docs = tuple(registry.client.get(f"/api/v1/plugins/acme/tool-{i}/versions/1.0.0").content
                 + registry.client.get(f"/api/v1/plugins/acme/tool-{i}").content for i in range(3))
    return (*docs, registry.client.get("/api/v1/plugins").content,
            registry.client.get("/api/v1/log/checkpoint").content)


def test_dry_run_groups_changes_by_reason_exits_1_and_writes_nothing(registry: Registry,
                                                                     tmp_path: Path) -> None:
    _catalogue(registry, 3)
    before = _snapshot(registry)
    result = _dry_run(registry, tmp_path, "--format", "json", extra=BAN_TOOL_1, experimental="notice")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["versions"], report["changed"], report["newly_blocked"], report["failed"]) == (3, 3, 1, 0)
    groups = {g["reason"]: g for g in report["groups"]}
    # A change is listed under every reason code it gained or lost (the tier's own code too).
    assert set(groups) == {"+TOOL_ONE_BANNED", "+TIER_UNTRUSTED", "-TIER_EXPERIMENTAL",
                           "experimental/warn -> experimental/notice"}
    assert groups["+TOOL_ONE_BANNED"]["versions"] == ["acme/tool-1@1.0.0"]
    assert groups["+TOOL_ONE_BANNED"]["message"] == "tool-1 is banned here"
    assert groups["+TOOL_ONE_BANNED"]["newly_blocked"] == 1
    assert groups["experimental/warn -> experimental/notice"]["count"] == 2
    (banned,) = [c for c in report["changes"] if c["newly_blocked"]]
    assert banned["plugin"] == "acme/tool-1"
    assert (banned["added"], banned["removed"]) == (["TIER_UNTRUSTED", "TOOL_ONE_BANNED"], ["TIER_EXPERIMENTAL"])
    assert (banned["before"]["action"], banned["after"]["action"]) == ("warn", "block")
    assert banned["after"]["tier"] == "untrusted" and banned["sandbox_changed"] == []
    assert _snapshot(registry) == before
    assert registry.store.audit_verify() == []


def test_dry_run_of_the_same_policy_changes_nothing_and_exits_0(registry: Registry,
                                                                 tmp_path: Path) -> None:
    _catalogue(registry, 2)
    result = _dry_run(registry, tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout == ("0 versions of 2 would change, 0 newly blocked, 0 not decided "
                             f"(policy revision {_policy(tmp_path).revision})\n")


def test_dry_run_reports_sandbox_changes_as_text_and_markdown(registry: Registry,
                                                              tmp_path: Path) -> None:
    _catalogue(registry, 2)
    target_data = {"sandbox": {"memory": "512m"}}
    for fmt in ("text", "markdown"):
        extra = tmp_path / f"{fmt}.json"
        extra.write_text(json.dumps({"cortex": target_data}))
        result = _dry_run(registry, tmp_path / fmt, "--format", fmt, "--data", str(extra))
        assert result.exit_code == 0, result.output
        if fmt == "text":
            lines = result.stdout.splitlines()
            assert lines[0].startswith("2 versions of 2 would change, 0 newly blocked")
            assert lines[2].split() == ["reason", "versions", "newly", "blocked", "message"]
            assert lines[3].split() == ["sandbox", "2", "0"]
            assert lines[6].split()[:6] == ["acme/tool-0@1.0.0", "experimental", "->", "experimental",
                                            "warn", "->"]
            assert lines[6].split()[-1] == "memory"
        else:
            assert "| sandbox | 2 | 0 |  |" in result.stdout
            assert "| acme\\/tool\\-1\\@1\\.0\\.0 | experimental → experimental | warn → warn | memory |  |" \
                in result.stdout


def test_dry_run_of_an_undecidable_version_exits_3(registry: Registry, tmp_path: Path) -> None:
    _catalogue(registry, 2)
    result = _dry_run(registry, tmp_path, "--format", "json", extra=RECURSE_ON_TOOL_1)
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and report["newly_blocked"] == 1
    assert report["groups"][0]["reason"] == "+ENGINE_ERROR"
    assert _versions(registry)["tool-1"]["decision"]["reasons"][0]["code"] != "ENGINE_ERROR"


def test_format_needs_dry_run(registry: Registry) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["registry", "retier", "--db", registry.db_url, "--format", "json"])
    assert result.exit_code == 2 and "--format applies to --dry-run" in result.stderr


# ------------------------------------------------------- what-if through the API (policy what-if)


def _what_if(url: str, tmp_path: Path, *args: str, extra: str | None = None, **actions: str) -> Any:
    from typer.testing import CliRunner

    from cli.main import app

    target = _policy_dir(tmp_path / "api-whatif", extra, **actions)
    return CliRunner().invoke(app, ["policy", "what-if", "--registry", url, "--no-defaults",
                                    "--policy-dir", str(target), "--data", str(target / "data.json"),
                                    *args])


def test_the_input_route_serves_the_input_the_stored_decision_was_made_on(registry: Registry) -> None:
    from cortex_trust.engine import decide
    from cortex_trust.policy import PolicyInput
    from tests.registry.conftest import make_policy_engine

    _catalogue(registry, 2)
    acme = registry.token()
    r = registry.client.post("/api/v1/plugins/acme/tool-1/versions/1.0.0/revoke",
                             json={"reason": "leaked key"}, headers=registry.auth(acme))
    assert r.status_code == 200, r.text
    for tool in ("tool-0", "tool-1"):
        base = f"/api/v1/plugins/acme/{tool}/versions/1.0.0"
        answer = registry.client.get(base + "/input")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        policy_input = PolicyInput.model_validate_json(answer.content)
        assert (policy_input.plugin.namespace, policy_input.plugin.name) == ("acme", tool)
        assert policy_input.evidence.revocation.revoked is (tool == "tool-1")
        with make_policy_engine() as engine:
            decision = decide(engine, policy_input)
        assert decision.to_json_dict() == registry.get(base)[1]["decision"]
    status, error = registry.get("/api/v1/plugins/acme/tool-9/versions/1.0.0/input")
    assert status == 404 and error["error"]["code"] == "NOT_FOUND"


def test_policy_what_if_reads_the_registry_and_reports_what_a_dry_run_reports(
        registry: Registry, tmp_path: Path) -> None:
    from tests.support.served_registry import serve_app

    _catalogue(registry, 3)
    before = _snapshot(registry)
    with serve_app(registry.app) as url:
        result = _what_if(url, tmp_path, "--format", "json", extra=BAN_TOOL_1,
                          experimental="notice")
        same = _what_if(url, tmp_path / "same")
        scoped = _what_if(url, tmp_path / "scoped", "--namespace", "other", extra=BAN_TOOL_1)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    dry = _dry_run(registry, tmp_path / "dry", "--format", "json", extra=BAN_TOOL_1,
                   experimental="notice")
    assert report == json.loads(dry.stdout)
    assert report["newly_blocked"] == 1 and report["changed"] == 3
    assert same.exit_code == 0 and same.stdout.startswith("0 versions of 3 would change"), same.output
    assert scoped.exit_code == 0 and scoped.stdout.startswith("0 versions of 0 would change")
    assert _snapshot(registry) == before


def test_policy_what_if_without_a_registry_exits_3(tmp_path: Path) -> None:
    from tests.support.served_registry import free_port

    result = _what_if(f"http://127.0.0.1:{free_port()}", tmp_path)
    assert result.exit_code == 3 and "cannot reach the registry" in result.stderr, result.output
