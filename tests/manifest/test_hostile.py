"""Hostile manifests each give a ManifestError, never another exception; properties of the loader.

Also the round trip: a generated valid manifest survives to_document → YAML → parse_manifest.
"""

from __future__ import annotations

import string
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex_trust.errors import ManifestError, ManifestProblem
from cortex_trust.manifest import HTTP_METHODS, Capability, Manifest, RuntimeSpec, TrustSpec, _spdx, parse_manifest
from cortex_trust.manifest._yaml import MAX_DEPTH, load_document

_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
DIGEST = "sha256:" + "0f" * 32
VALID: dict[str, Any] = {
    "name": "hello", "version": "0.1.0", "description": "Greets.",
    "author": "Ada <ada@example.org>", "license": "MIT",
    "runtime": {"type": "docker", "image": f"127.0.0.1:5000/cortex/hello@{DIGEST}"},
    "capabilities": [{"name": "greet", "endpoint": "/greet", "method": "GET"}],
    "trust": {"min_cortex_version": "0.1.0"},
}


def only_manifest_error(data: bytes | str) -> list[ManifestProblem]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, source="h.yaml")
    for p in info.value.problems:
        assert p.line >= 1 and p.column >= 1 and p.problem and p.fix and p.path == "h.yaml"
    return info.value.problems


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.perf_counter()
    problems = only_manifest_error((FIXTURES / "invalid/billion-laughs.yaml").read_bytes())
    assert time.perf_counter() - start < 1.0
    assert any("anchor &a" in p.problem for p in problems)
    assert any("alias *a" in p.problem for p in problems)
    assert len(problems) < 30  # one report per anchor, not one per expansion


def test_alias_alone_and_anchor_alone_are_refused() -> None:
    (p,) = only_manifest_error("name: &n hello\n")
    assert (p.line, p.column) == (1, 7) and "anchor &n" in p.problem
    problems = only_manifest_error("name: hello\nother: *x\n")
    assert any("alias *x" in p.problem for p in problems)


@pytest.mark.parametrize("n", [100_000, 60_000, 1_000])
def test_deep_flow_nesting(n: int) -> None:
    text = "[" * n + "]" * n if n < 60_000 else "[" * n
    problems = only_manifest_error(text)
    if len(text.encode()) > 64 * 1024:
        assert "limit is 65536" in problems[0].problem
    else:
        assert f"nested deeper than {MAX_DEPTH}" in problems[0].problem
        if n <= 1000:  # deeper input may be cut off by libyaml's own look-ahead cap first
            assert problems[0].column == MAX_DEPTH + 1


def test_deep_block_nesting() -> None:
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"
    problems = only_manifest_error(text)
    assert f"nested deeper than {MAX_DEPTH}" in problems[0].problem
    assert problems[0].line == MAX_DEPTH + 1


def test_depth_at_the_limit_is_fine() -> None:
    deep = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)
    doc = load_document(f"x: {deep}\n", source="d.yaml")
    assert "x" in doc.value


def test_no_recursion_error_even_with_a_tiny_stack() -> None:
    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        only_manifest_error("[" * 50_000)
    finally:
        sys.setrecursionlimit(old)


@pytest.mark.parametrize("text, line, fragment", [
    ("name: a\nname: b\n", 2, "duplicate key 'name' (first at line 1)"),
    ("trust:\n  network: false\n  network: true\n", 3, "duplicate key 'network'"),
    ('name: a\n"name": b\n', 2, "duplicate key 'name'"),
])
def test_duplicate_keys(text: str, line: int, fragment: str) -> None:
    problems = only_manifest_error(text)
    dup = [p for p in problems if "duplicate" in p.problem]
    assert dup and dup[0].line == line and fragment in dup[0].problem


@pytest.mark.parametrize("text, fragment", [
    ("1: x\n", "is not a string (YAML reads it as int)"),
    ("null: x\n", "is not a string"),
    ("true: x\n", "is not a string"),
    ("? [a, b]\n: x\n", "keys must be plain strings"),
    ("? {a: 1}\n: x\n", "keys must be plain strings"),
    ("<<: {name: x}\n", "merge keys"),
])
def test_non_string_keys(text: str, fragment: str) -> None:
    assert any(fragment in p.problem for p in only_manifest_error(text))


@pytest.mark.parametrize("text, fragment", [
    ("name: !!python/object/apply:os.system ['true']\n", "explicit YAML tag !!python/object"),
    ("version: !!str 1.10\n", "explicit YAML tag !!str"),
    ("name: !custom x\n", "explicit YAML tag !custom"),
    ("trust: !!map {network: true}\n", "explicit YAML tag !!map"),
    ("name: ! x\n", "explicit YAML tag !"),
])
def test_explicit_tags(text: str, fragment: str) -> None:
    assert any(fragment in p.problem for p in only_manifest_error(text))


def test_python_tag_fixture_executes_nothing(tmp_path: Path) -> None:
    marker = Path("/tmp/cortex-pwned")
    marker.unlink(missing_ok=True)
    only_manifest_error((FIXTURES / "invalid/python-tag.yaml").read_bytes())
    assert not marker.exists()


@pytest.mark.parametrize("text, fragment", [
    ("name: a\n---\nname: b\n", "more than one YAML document"),
    ("", "empty"),
    ("# only a comment\n", "empty"),
    ("---\n...\n", "empty"),
    ("~\n", "empty"),
    ("- a\n- b\n", "is a list, not a mapping"),
    ("hello\n", "is a single value (str), not a mapping"),
    ("42\n", "not a mapping"),
    ("name: [unclosed\n", "invalid YAML"),
    ("name: 'unterminated\n", "invalid YAML"),
    ("a:\n\tb: 1\n", "invalid YAML"),
    ("name: a\n  bad indent: b\n", "invalid YAML"),
    ("%TAG !e! tag:evil.example,2000:\n---\nname: !e!x y\n", "explicit YAML tag"),
])
def test_structure_and_syntax(text: str, fragment: str) -> None:
    assert any(fragment in p.problem for p in only_manifest_error(text)), fragment


def test_syntax_error_position() -> None:
    (p,) = only_manifest_error('name: hello\nversion: "0.1.0\n')
    assert p.line >= 2 and "invalid YAML" in p.problem


def test_huge_string_is_refused_by_size_before_parsing() -> None:
    big = "description: " + "x" * (10 * 1024 * 1024) + "\n"
    start = time.perf_counter()
    (p,) = only_manifest_error(big)
    assert "limit is 65536" in p.problem
    (p,) = only_manifest_error(big.encode())
    assert "the limit is 65536" in p.problem
    assert time.perf_counter() - start < 1.0


def test_just_over_the_size_cap() -> None:
    data = b"#" * (64 * 1024) + b"\n"
    (p,) = only_manifest_error(data)
    assert "65537 bytes" in p.problem


def test_multibyte_text_is_measured_in_bytes() -> None:
    text = "description: " + "é" * 33_000 + "\n"  # < 64 Ki characters, > 64 KiB of UTF-8
    (p,) = only_manifest_error(text)
    assert "limit is 65536" in p.problem


def test_non_utf8_bytes_are_located() -> None:
    (p,) = only_manifest_error((FIXTURES / "invalid/latin1.yaml").read_bytes())
    assert (p.line, p.column) == (1, 8)
    assert "not UTF-8" in p.problem and "UTF-8" in p.fix
    (p,) = only_manifest_error("name: hello\n".encode("utf-16"))
    assert "UTF-16" in p.problem


def test_utf8_bom_is_accepted() -> None:
    assert parse_manifest(b"\xef\xbb\xbf" + yaml.safe_dump(VALID).encode()).name == "hello"


@pytest.mark.parametrize("data, at", [
    (b"name: hel\x00lo\n", (1, 10)),
    (b"name: hello\nversion: \x00\n", (2, 10)),
    (b"\x00", (1, 1)),
    (b"name: a\x1bb\n", (1, 8)),
])
def test_nul_and_control_bytes(data: bytes, at: tuple[int, int]) -> None:
    (p,) = only_manifest_error(data)
    assert (p.line, p.column) == at
    assert "NUL" in p.problem or "control character" in p.problem


def test_lone_surrogate_in_str_input() -> None:
    (p,) = only_manifest_error("name: a\ud800b\n")
    assert "UTF-8" in p.problem


@pytest.mark.parametrize("name, fragment", [
    ("hеllo", "U+0435 CYRILLIC SMALL LETTER IE"),
    ("pаypal", "U+0430 CYRILLIC SMALL LETTER A"),
    ("gοogle", "U+03BF GREEK SMALL LETTER OMICRON"),
    ("ｈｅｌｌｏ", "FULLWIDTH LATIN SMALL LETTER H"),
    ("hello\u200b", "ZERO WIDTH SPACE"),
    ("he\u0301llo", "COMBINING ACUTE ACCENT"),
    ("hello‐world", "HYPHEN"),
])
def test_unicode_lookalike_names(name: str, fragment: str) -> None:
    doc = dict(VALID, name=name)
    problems = only_manifest_error(yaml.safe_dump(doc, allow_unicode=True))
    (p,) = [p for p in problems if p.field == "name"]
    assert fragment in p.problem and "non-ASCII" in p.problem


def test_lookalike_gets_an_ascii_spelling() -> None:
    doc = dict(VALID, name="hеllo-wοrld")
    (p,) = only_manifest_error(yaml.safe_dump(doc, allow_unicode=True))
    assert "looks like the Latin 'e'" in p.problem
    assert p.fix == "type the name in plain ASCII: hello-world"


# --- wrong types everywhere (hypothesis) ------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=30), st.dates(), st.binary(max_size=10).map(lambda b: b.hex()),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
_PATHS: list[tuple[str | int, ...]] = [
    ("name",), ("version",), ("description",), ("author",), ("license",), ("runtime",),
    ("runtime", "type"), ("runtime", "image"), ("capabilities",), ("capabilities", 0),
    ("capabilities", 0, "name"), ("capabilities", 0, "endpoint"), ("capabilities", 0, "method"),
    ("capabilities", 0, "description"), ("trust",), ("trust", "min_cortex_version"),
    ("trust", "sandbox"), ("trust", "network"), ("trust", "filesystem"), ("extra",),
    ("trust", "extra"), ("capabilities", 0, "extra"),
]


def _set(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _values), min_size=1, max_size=4))
def test_wrong_types_everywhere_give_only_manifest_errors(
        changes: list[tuple[tuple[str | int, ...], Any]]) -> None:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    for path, value in changes:
        try:
            _set(doc, path, value)
        except (TypeError, KeyError, IndexError):
            continue  # an earlier change replaced the parent with a scalar
    text = yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True)
    try:
        m = parse_manifest(text, source="h.yaml")
    except ManifestError as e:
        assert all(p.line >= 1 and p.column >= 1 and p.fix for p in e.problems)
    else:
        assert isinstance(m, Manifest)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_only_manifest_errors(text: str) -> None:
    try:
        parse_manifest(text)
    except ManifestError:
        pass


_yamlish = st.lists(st.sampled_from([
    "name", ":", " ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&a", "*a", "!!str", "!x", "?",
    "'", '"', "#", "---", "...", "1.10", "yes", "~", "|", ">", "\t", "%YAML 1.1", "<<", "é",
    "\x00", "\ufeff", "trust", "network", "version", "0.1.0", "\\", "@", "`",
]), max_size=60).map("".join)


@settings(max_examples=200, deadline=None)
@given(_yamlish)
def test_yaml_ish_soup_gives_only_manifest_errors(text: str) -> None:
    try:
        parse_manifest(text)
    except ManifestError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_only_manifest_errors(data: bytes) -> None:
    try:
        parse_manifest(data)
    except ManifestError:
        pass


# --- round trip (hypothesis) -------------------------------------------------------------------

_slug_part = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_names = st.lists(_slug_part, min_size=1, max_size=4).map("-".join).filter(lambda s: len(s) <= 64)
_num = st.integers(min_value=0, max_value=10_000)
_pre = st.lists(st.one_of(_num.map(str), st.text("abcXYZ-", min_size=1, max_size=5)),
                max_size=3)
_versions = st.builds(
    lambda a, b, c, pre, build: f"{a}.{b}.{c}" + (f"-{'.'.join(pre)}" if pre else "")
    + (f"+{'.'.join(build)}" if build else ""),
    _num, _num, _num, _pre, st.lists(st.text("a1-", min_size=1, max_size=4), max_size=2))
_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufeff")
    | st.sampled_from("\n\t"), min_size=1, max_size=200,
).filter(lambda s: bool(s.strip()))
_authors = st.builds(
    lambda n, u, d: f"{n} <{u}@{d}.org>",
    st.text(string.ascii_letters + " .'-", min_size=1, max_size=20).map(str.strip)
    .filter(lambda s: bool(s) and "<" not in s),
    st.text(string.ascii_lowercase + ".+_", min_size=1, max_size=10).filter(
        lambda s: s.strip(".") != ""),
    _slug_part,
)
_ids = st.sampled_from(sorted(_spdx.LICENSE_IDS))
_licenses = st.one_of(
    _ids, st.builds(lambda a, b: f"{a} OR {b}", _ids, _ids),
    st.builds(lambda a, b, c: f"({a} AND {b}) OR {c}", _ids, _ids, _ids),
    st.just("Apache-2.0 WITH LLVM-exception"), st.just("LicenseRef-acme-internal"),
)
_components = st.lists(_slug_part, min_size=1, max_size=3).map("/".join)
_images = st.builds(
    lambda dom, path, tag, digest: (f"{dom}/" if dom else "") + path
    + (f":{tag}" if tag else "") + (f"@sha256:{digest}" if digest else ""),
    st.sampled_from([None, "localhost:5000", "127.0.0.1:5000", "registry.example.org",
                     "ghcr.io"]),
    _components,
    st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "_.-", min_size=1,
                                 max_size=12).filter(lambda t: t[0] not in ".-")),
    st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
)
_endpoints = st.lists(st.text(string.ascii_letters + string.digits + "-_~", min_size=1,
                              max_size=8), max_size=4).map(lambda ps: "/" + "/".join(ps))


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    names = draw(st.lists(_slug_part, min_size=1, max_size=4, unique=True))
    caps = []
    routes = set()
    for n in names:
        endpoint = draw(_endpoints)
        method = draw(st.sampled_from(HTTP_METHODS))
        if (method, endpoint) in routes:
            continue
        routes.add((method, endpoint))
        caps.append(Capability(name=n, endpoint=endpoint, method=method,
                               description=draw(st.one_of(st.none(), _text))))
    return Manifest(
        name=draw(_names), version=draw(_versions), description=draw(_text),
        author=draw(_authors), license=draw(_licenses),
        runtime=RuntimeSpec(type="docker", image=draw(_images)),
        capabilities=tuple(caps),
        trust=TrustSpec(min_cortex_version=draw(_versions), sandbox=draw(st.booleans()),
                        network=draw(st.booleans()), filesystem=draw(st.booleans())),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.booleans(), st.booleans())
def test_round_trip(m: Manifest, allow_unicode: bool, flow: bool) -> None:
    text = yaml.dump(m.to_document(), Dumper=_DUMPER, allow_unicode=allow_unicode,
                     sort_keys=False, default_flow_style=flow)
    again = parse_manifest(text)
    assert again == m
    assert again.to_document() == m.to_document()
