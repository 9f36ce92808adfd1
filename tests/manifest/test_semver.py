"""cortex_trust.manifest: SemVer 2.0.0 parsing, precedence and requirements."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cortex_trust.manifest._semver as semver_mod
from cortex_trust.manifest import SemVer, SemVerError, parse_semver, satisfies, semver_key
from cortex_trust.manifest._semver import parse_minimum


def test_public_surface_is_pinned() -> None:
    assert sorted(semver_mod.__all__) == [
        "SemVer", "SemVerError", "parse_minimum", "parse_semver", "satisfies", "semver_key"]


@pytest.mark.parametrize("text, expected", [
    ("0.0.0", SemVer(0, 0, 0)),
    ("1.2.3", SemVer(1, 2, 3)),
    ("1.0.0-alpha.1", SemVer(1, 0, 0, ("alpha", 1))),
    ("1.0.0-0.3.7", SemVer(1, 0, 0, (0, 3, 7))),
    ("1.0.0-x-y-z.--", SemVer(1, 0, 0, ("x-y-z", "--"))),
    ("1.0.0+20130313144700", SemVer(1, 0, 0, (), ("20130313144700",))),
    ("1.0.0-beta+exp.sha.5114f85", SemVer(1, 0, 0, ("beta",), ("exp", "sha", "5114f85"))),
    ("10.20.30", SemVer(10, 20, 30)),
])
def test_parse_valid(text: str, expected: SemVer) -> None:
    assert parse_semver(text) == expected
    assert str(parse_semver(text)) == text


@pytest.mark.parametrize("text, fragment", [
    ("1.10", "all three numbers"),
    ("1", "all three numbers"),
    ("v1.2.3", "'v' prefix"),
    ("01.2.3", "leading zero"),
    ("1.02.3", "leading zero"),
    ("1.2.3-01", "not a SemVer"),
    ("1.2.3-", "not a SemVer"),
    ("1.2.3+", "not a SemVer"),
    ("1.2.3.4", "not a SemVer"),
    ("", "not"),
    (" 1.2.3", "not a SemVer"),
    ("1.2.3\n", "not a SemVer"),
    ("١.٢.٣", "not"),  # Arabic-Indic digits are digits to Python, not to SemVer
    ("1" * 300 + ".0.0", "longer than"),
])
def test_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(SemVerError, match=fragment):
        parse_semver(text)


@pytest.mark.parametrize("text, expected", [
    ("8", SemVer(8, 0, 0)),
    ("8.0", SemVer(8, 0, 0)),
    ("8.10", SemVer(8, 10, 0)),
    ("0.1", SemVer(0, 1, 0)),
    ("8.0.0", SemVer(8, 0, 0)),
    ("8.1.2-rc.1+b.7", SemVer(8, 1, 2, ("rc", 1), ("b", "7"))),
])
def test_minimum_accepts_short_forms(text: str, expected: SemVer) -> None:
    assert parse_minimum(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("v8.0", "'v' prefix"),
    (">=8.0", "already a minimum"),
    ("^8", "already a minimum"),
    ("08", "leading zero"),
    ("8.01", "leading zero"),
    ("8.x", "not a version"),
    ("8.0-rc.1", "not a version"),  # a pre-release needs the full version
    ("8.0.0.0", "not a version"),
    ("latest", "not a version"),
    ("", "not a version"),
    ("8" * 300, "longer than"),
])
def test_minimum_refuses_what_it_cannot_read(text: str, fragment: str) -> None:
    with pytest.raises(SemVerError, match=fragment):
        parse_minimum(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(SemVerError):
        parse_semver(1.1)  # type: ignore[arg-type]


def test_spec_precedence_example() -> None:
    # semver.org item 11: the example chain, in order.
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    shuffled = chain[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=semver_key) == chain
    assert semver_key("1.0.0+a") == semver_key("1.0.0+b")
    assert semver_key("1.10.0") > semver_key("1.9.0")


@pytest.mark.parametrize("version, spec, ok", [
    ("1.2.3", "1.2.3", True), ("1.2.4", "1.2.3", False), ("1.2.3", "=1.2.3", True),
    ("1.2.9", "1.2", True), ("1.3.0", "1.2", False), ("1.9.0", "1.x", True),
    ("1.9.9", "^1.2", True), ("1.2.0", "^1.2", True), ("1.1.9", "^1.2", False),
    ("2.0.0", "^1.2", False), ("2.0.0-rc.1", "^1.2", False),
    ("0.2.5", "^0.2.3", True), ("0.3.0", "^0.2.3", False), ("0.0.3", "^0.0.3", True),
    ("0.0.4", "^0.0.3", False), ("0.9.0", "^0", True), ("1.0.0", "^0", False),
    ("1.2.9", "~1.2.3", True), ("1.3.0", "~1.2.3", False), ("1.2.2", "~1.2.3", False),
    ("1.9.0", "~1", True), ("2.0.0", "~1", False),
    ("1.5.0", ">=1.0,<2", True), ("2.0.0", ">=1.0,<2", False), ("0.9.9", ">=1.0,<2", False),
    ("1.0.0", ">=1.0, <2", True), ("1.0.0", ">= 1.0 < 2", True),
    ("1.0.1", ">1.0.0", True), ("1.0.0", ">1.0.0", False), ("1.1.0", ">1.0", True),
    ("1.0.9", ">1.0", False), ("1.0.0", "<=1.0.0", True), ("1.0.5", "<=1.0", True),
    ("1.1.0", "<=1.0", False), ("1.0.0", "!=1.0.0", False), ("1.0.1", "!=1.0.0", True),
    ("5.0.0", "*", True), ("1.0.0", "^2 || ^1", True), ("3.0.0", "^2 || ^1", False),
    # pre-releases only when the requirement names one of the same MAJOR.MINOR.PATCH
    ("1.5.0-beta", ">=1.0.0", False), ("1.0.0-rc.2", ">=1.0.0-rc.1", True),
    ("1.0.1-rc.1", ">=1.0.0-rc.1", False), ("1.0.0-rc.1", "1.0.0-rc.1", True),
    ("1.0.0-rc.1", "^1.0.0-rc.1", True), ("1.0.0", "^1.0.0-rc.1", True),
])
def test_satisfies(version: str, spec: str, ok: bool) -> None:
    assert satisfies(version, spec) is ok


@pytest.mark.parametrize("spec", ["", ">=", "^x.y", "1.2.3.4", ">=1.0,,foo", "!=1.2",
                                  "1.x-rc.1", "~>1.0"])
def test_bad_requirements_raise(spec: str) -> None:
    with pytest.raises(SemVerError):
        satisfies("1.0.0", spec)


def test_bad_version_raises() -> None:
    with pytest.raises(SemVerError):
        satisfies("1.0", "^1")


# --- properties --------------------------------------------------------------------------------

_num = st.integers(min_value=0, max_value=10**6)
_ident = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    # an alphanumeric identifier: digits may lead, but at least one non-digit
    st.builds(lambda a, b, c: a + b + c, st.text("0123456789", max_size=2),
              st.sampled_from("abzAZ-"), st.text("0a9Zz-", max_size=4)),
)
_versions = st.builds(
    SemVer, _num, _num, _num,
    st.lists(_ident, max_size=4).map(tuple),
    st.lists(st.text("0a9Zz-", min_size=1, max_size=6), max_size=2).map(tuple),
)


@given(_versions)
def test_str_parse_round_trip(v: SemVer) -> None:
    assert parse_semver(str(v)) == v


@given(_versions, _versions, _versions)
def test_ordering_is_a_total_preorder(a: SemVer, b: SemVer, c: SemVer) -> None:
    ka, kb, kc = semver_key(a), semver_key(b), semver_key(c)
    assert (ka <= kb) or (kb <= ka)  # total
    if ka <= kb and kb <= kc:
        assert ka <= kc  # transitive
    assert (ka == kb) == (a[:4] == b[:4])  # equal iff equal ignoring build metadata


@given(_versions)
def test_release_outranks_its_prereleases(v: SemVer) -> None:
    release = SemVer(v.major, v.minor, v.patch)
    if v.prerelease:
        assert semver_key(v) < semver_key(release)
    bumped = SemVer(v.major, v.minor, v.patch + 1, ("alpha",))
    assert semver_key(v) < semver_key(bumped)


@given(_versions, _versions)
def test_key_agrees_with_string_and_tuple_input(a: SemVer, b: SemVer) -> None:
    assert semver_key(str(a)) == semver_key(a)
    assert (semver_key(a) < semver_key(b)) == (semver_key(str(a)) < semver_key(str(b)))


@given(_versions)
def test_caret_contains_itself_and_excludes_next_major(v: SemVer) -> None:
    release = SemVer(v.major, v.minor, v.patch)
    assert satisfies(release, f"^{release}")
    assert satisfies(release, f">={release}")
    assert not satisfies(SemVer(v.major + 1, 0, 0), f"^{release}")
    assert satisfies(v, str(SemVer(*v[:4])))  # exact match, build metadata ignored
