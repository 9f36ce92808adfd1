"""Policy-set loading: discovery, overrides, data merging, revisions, hardened data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import PolicyError
from cortex_trust.policy import PolicySet, default_policy_dir, load_policy_set
from cortex_trust.policy._sets import _deep_merge
from tests.support.hostile import org_replacing_revocation

FIX = Path(__file__).parent.parent / "fixtures"
SMALL = FIX / "policies_small"
ORG = FIX / "policies_org"
BAD = FIX / "policies_bad"
ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "policies"


def test_all_is_pinned() -> None:
    import cortex_trust.policy._sets as m

    assert sorted(m.__all__) == ["MAX_DATA_BYTES", "MAX_MODULE_BYTES", "PolicyModule", "PolicySet",
                                 "default_policy_dir", "load_policy_set"]


def test_loads_modules_and_data_without_tests() -> None:
    ps = load_policy_set([SMALL], defaults=False)
    assert [m.name for m in ps.modules] == ["cortex/decision.rego"]
    assert ps.modules[0].path == SMALL / "cortex" / "decision.rego"
    assert ps.data["cortex"]["thresholds"]["verified_days"] == 30
    assert ps.has_custom  # not the shipped defaults
    assert ps.revision.startswith("sha256:") and len(ps.revision) == 7 + 64
    assert ps.short_revision == ps.revision[7:19]


def test_include_tests_adds_test_modules() -> None:
    ps = load_policy_set([SMALL], defaults=False, include_tests=True)
    assert [m.name for m in ps.modules] == ["cortex/decision.rego", "cortex/decision_test.rego"]
    assert [m.is_test for m in ps.modules] == [False, True]


def test_same_relative_path_replaces_other_paths_add() -> None:
    base = load_policy_set([SMALL], defaults=False)
    over = load_policy_set([SMALL, BAD / "undefined"], defaults=False)
    assert [m.name for m in over.modules] == ["cortex/decision.rego"]
    assert "never" in over.modules[0].text
    assert over.modules[0].path == BAD / "undefined" / "cortex" / "decision.rego"
    added = load_policy_set([SMALL, ORG], defaults=False)
    assert [m.name for m in added.modules] == ["cortex/decision.rego", "cortex/org.rego"]
    assert len({base.revision, over.revision, added.revision}) == 3


def test_data_deep_merges_in_order(tmp_path: Path) -> None:
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"cortex": {"actions": {"community": "warn"}, "new": [1]}}))
    ps = load_policy_set([SMALL, ORG], [extra], defaults=False)
    actions = ps.data["cortex"]["actions"]
    assert actions == {"verified": "allow", "community": "warn", "experimental": "block",
                       "untrusted": "block"}
    assert ps.data["cortex"]["new"] == [1]
    assert ps.data["cortex"]["thresholds"] == {"verified_days": 30}


def test_revision_is_stable_and_tracks_data(tmp_path: Path) -> None:
    a = load_policy_set([SMALL], defaults=False)
    b = load_policy_set([SMALL], defaults=False)
    assert a.revision == b.revision
    d = tmp_path / "d.yaml"
    d.write_text("cortex:\n  thresholds:\n    verified_days: 31\n")
    assert load_policy_set([SMALL], [d], defaults=False).revision != a.revision


def test_defaults_exist_and_explicit_default_dir_is_loaded_once() -> None:
    default_dir = default_policy_dir()
    assert default_dir.is_dir()
    plain = load_policy_set()
    assert not plain.has_custom
    assert plain.modules and all(m.default for m in plain.modules)
    twice = load_policy_set([default_dir, default_dir])
    assert twice.revision == plain.revision and not twice.has_custom
    assert [m.name for m in twice.modules] == [m.name for m in plain.modules]


def test_defaults_plus_org_is_custom() -> None:
    ps = load_policy_set([ORG])
    assert ps.has_custom
    assert "cortex/org.rego" in [m.name for m in ps.modules]


@pytest.mark.parametrize("dirs", [[FIX / "does-not-exist"], [SMALL / "data.yaml"]])
def test_missing_policy_dir_is_a_policy_error(dirs: list[Path]) -> None:
    with pytest.raises(PolicyError) as e:
        load_policy_set(dirs, defaults=False)
    assert "does not exist" in e.value.message and e.value.advice


def test_no_modules_is_a_policy_error(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(PolicyError, match="no Rego modules"):
        load_policy_set([tmp_path], defaults=False)
    with pytest.raises(PolicyError, match="no Rego modules"):
        load_policy_set([], defaults=False)


@pytest.mark.parametrize(("text", "suffix", "needle"), [
    ("a: &x 1\nb: *x\n", ".yaml", "aliases"),
    ("a: 1\na: 2\n", ".yaml", "duplicate key"),
    ("- 1\n- 2\n", ".yaml", "must hold an object"),
    ("when: 2026-01-01\n", ".yaml", "not a JSON value"),
    ("1: x\n", ".yaml", "keys must be strings"),
    ("a: [\n", ".yaml", "invalid"),
    ('{"a": NaN}', ".json", "invalid JSON"),
    ('{"a": 1,}', ".json", "invalid JSON"),
    ("[1]", ".json", "must hold an object"),
])
def test_bad_data_files_are_policy_errors(tmp_path: Path, text: str, suffix: str, needle: str) -> None:
    f = tmp_path / f"data{suffix}"
    f.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy_set([SMALL], [f], defaults=False)
    assert needle in e.value.message
    assert str(f) in e.value.message and e.value.advice


def test_yaml_alias_error_has_a_line() -> None:
    with pytest.raises(PolicyError) as e:
        load_policy_set([SMALL, BAD / "bad_data"], defaults=False)
    assert f"{BAD / 'bad_data' / 'data.yaml'}:3:" in e.value.message


def test_oversized_data_file(tmp_path: Path) -> None:
    f = tmp_path / "big.json"
    f.write_text('{"a": "' + "x" * (1024 * 1024) + '"}')
    with pytest.raises(PolicyError, match="cap"):
        load_policy_set([SMALL], [f], defaults=False)


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_set([SMALL], [tmp_path / "nope.yaml"], defaults=False)


def test_policy_set_is_frozen() -> None:
    ps = load_policy_set([SMALL], defaults=False)
    with pytest.raises(AttributeError):
        ps.revision = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ps.data["cortex"] = {}  # type: ignore[index]
    assert isinstance(ps, PolicySet)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=2), c, max_size=3),
                     max_leaves=10)


@given(st.dictionaries(st.text(max_size=2), _json, max_size=4),
       st.dictionaries(st.text(max_size=2), _json, max_size=4))
def test_deep_merge_later_wins_and_keeps_the_rest(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    merged: dict = {}  # type: ignore[type-arg]
    _deep_merge(merged, a)
    _deep_merge(merged, b)
    for k, v in b.items():
        if not (isinstance(v, dict) and isinstance(a.get(k), dict)):
            assert merged[k] == v
    for k, v in a.items():
        assert k in merged
        if k not in b:
            assert merged[k] == v


def test_policy_dir_without_modules_or_data_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "README.md").write_text("the modules are in policies/")
    with pytest.raises(PolicyError, match=r"contains no \.rego files"):
        load_policy_set([SMALL, tmp_path], defaults=False)


def test_policy_dir_with_only_tests_or_only_data_is_fine(tmp_path: Path) -> None:
    (tmp_path / "only_test.rego").write_text("package only_test\nimport rego.v1\ntest_x if true\n")
    assert [m.name for m in load_policy_set([SMALL, tmp_path], defaults=False).modules] == [
        "cortex/decision.rego"]
    data_only = tmp_path / "d"
    data_only.mkdir()
    (data_only / "data.json").write_text('{"cortex": {"thresholds": {"verified_days": 7}}}')
    ps = load_policy_set([SMALL, data_only], defaults=False)
    assert ps.data["cortex"]["thresholds"]["verified_days"] == 7


# ------------------------------------------- what an organization's policy directory can reach


@pytest.mark.security_review
def test_policy_set_lists_the_default_modules_an_org_dir_replaces(tmp_path: Path) -> None:
    org = org_replacing_revocation(tmp_path)
    ps = load_policy_set([org])
    assert [(name, new) for name, _, new in ps.overrides] == [
        ("cortex/revocation.rego", org / "cortex" / "revocation.rego")]
    assert "cortex/revocation.rego" in ps.override_notices()[0]
    # Adding modules under other names replaces nothing.
    assert load_policy_set([ACME]).overrides == ()


@pytest.mark.security_review
@pytest.mark.parametrize("link", ["cortex/leak.rego", "data.yaml"])
def test_policy_dir_refuses_symlinks_that_leave_it(tmp_path: Path, link: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    (org / "cortex" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / link).symlink_to(secret)
    with pytest.raises(PolicyError, match="outside the policy directory"):
        load_policy_set([org])


@pytest.mark.security_review
def test_policy_dir_accepts_symlinks_inside_it(tmp_path: Path) -> None:
    org = tmp_path / "org"
    (org / "acme").mkdir(parents=True)
    (org / "acme" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / "acme" / "alias.rego").symlink_to(org / "acme" / "extra.rego")
    assert {m.name for m in load_policy_set([org]).modules} >= {"acme/extra.rego", "acme/alias.rego"}


@pytest.mark.security_review
def test_org_test_module_cannot_change_production_decisions(tmp_path: Path) -> None:
    from cortex_trust.engine import EmbeddedEngine, decide
    from tests.engine.test_embedded import make_input

    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    (org / "cortex" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / "cortex" / "evil_test.rego").write_text(
        'package cortex\nimport rego.v1\n'
        'deny contains {"code": "FROM_A_TEST", "message": "m"} if { true }\n')
    ps = load_policy_set([org])
    assert not any(m.is_test for m in ps.modules)
    with EmbeddedEngine(ps) as engine:
        decision = decide(engine, make_input())
    assert not decision.failed and "FROM_A_TEST" not in decision.codes
    # Under `cortex policy test` (include_tests=True) it is loaded, and there it does count.
    assert any(m.name == "cortex/evil_test.rego"
               for m in load_policy_set([org], include_tests=True).modules)
