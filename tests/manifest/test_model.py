"""Manifest v1: valid samples load, every rule is enforced with the right file:line:col and field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from cortex_trust.errors import ManifestError, ManifestProblem
from cortex_trust.ids import parse_image_ref
from cortex_trust.manifest import (
    Capability,
    Manifest,
    RuntimeSpec,
    TrustSpec,
    load_manifest,
    manifest_json_schema,
    parse_manifest,
)
from cortex_trust.policy import ManifestFacts, manifest_facts

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
DIGEST = "sha256:" + "ab" * 32

# Line numbers matter: the parametrised cases below replace one line of this text.
BASE = f"""\
name: hello
version: "0.1.0"
description: Greets people.
author: "Ada Lovelace <ada@example.org>"
license: Apache-2.0
runtime:
  type: docker
  image: 127.0.0.1:5000/cortex/hello:0.1.0@{DIGEST}
capabilities:
  - name: greet
    endpoint: /greet
    method: GET
  - name: echo
    endpoint: /echo
    method: POST
    description: Echoes.
trust:
  min_cortex_version: "0.1.0"
  network: false
"""


def with_line(n: int, text: str, base: str = BASE) -> str:
    lines = base.splitlines()
    lines[n - 1] = text
    return "\n".join(lines) + "\n"


def problems_of(text: str | bytes) -> list[ManifestProblem]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, source="m.yaml")
    return info.value.problems


def test_base_is_valid() -> None:
    m = parse_manifest(BASE)
    assert m.name == "hello"
    assert m.image_digest == DIGEST
    assert m.image_repository == "127.0.0.1:5000/cortex/hello"
    assert m.image_tag == "0.1.0"
    assert [c.method for c in m.capabilities] == ["GET", "POST"]


@pytest.mark.parametrize("path", sorted((FIXTURES / "valid").glob("*.yaml")), ids=lambda p: p.name)
def test_valid_fixtures_load(path: Path) -> None:
    m = load_manifest(path)
    assert isinstance(m, Manifest)
    assert m.to_document()["name"] == m.name


def test_examples_are_valid_and_fixtures_are_copies() -> None:
    hello = load_manifest(ROOT / "examples/plugins/hello/manifest.yaml")
    assert hello.name == "hello"
    assert hello.image_digest is not None
    assert hello.image_repository == "127.0.0.1:5000/cortex/hello"
    assert {(c.method, c.endpoint) for c in hello.capabilities} == {("GET", "/greet"),
                                                                    ("POST", "/echo")}
    assert hello.trust.network is False
    netfetch = load_manifest(ROOT / "examples/plugins/netfetch/manifest.yaml")
    assert netfetch.trust.network is True
    for name, copy in (("hello", "valid/hello.yaml"), ("netfetch", "valid/netfetch.yaml"),
                       ("spec-example", "valid/spec-example.yaml"), ("broken", "invalid/broken.yaml")):
        original = ROOT / f"examples/plugins/{name}/manifest.yaml"
        assert original.read_bytes() == (FIXTURES / copy).read_bytes()


def test_broken_example_reports_every_problem_in_order() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(ROOT / "examples/plugins/broken/manifest.yaml")
    got = [(p.line, p.column, p.field) for p in info.value.problems]
    assert got == [
        (2, 7, "name"), (3, 10, "version"), (5, 9, "author"), (6, 10, "license"),
        (9, 10, "runtime.image"), (12, 15, "capabilities[0].endpoint"),
        (13, 13, "capabilities[0].method"), (14, 11, "capabilities[1].name"),
        (18, 23, "trust.min_cortex_version"), (19, 12, "trust.sandbox"),
        (20, 3, "trust.netwrok"),
    ]
    assert all(p.path.endswith("broken/manifest.yaml") for p in info.value.problems)
    assert all(p.fix for p in info.value.problems)


def test_defaults_are_applied_and_document_keys_are_field_names() -> None:
    m = load_manifest(FIXTURES / "valid/minimal.yaml")
    doc = m.to_document()
    assert list(doc) == ["name", "version", "description", "author", "license", "runtime",
                         "capabilities", "trust"]
    assert doc["trust"] == {"min_cortex_version": "0.1.0", "sandbox": True, "network": False,
                            "filesystem": False}
    assert doc["capabilities"] == [{"name": "ping", "endpoint": "/", "method": "HEAD",
                                    "description": None}]
    assert doc["runtime"] == {"type": "docker", "image": "plugins/minimal"}
    json.dumps(doc)  # JSON-ready
    assert m.image_digest is None and m.image_tag is None


@pytest.mark.parametrize("line, text, at, field, fragment", [
    # version: YAML floats and ints are refused with the source text, never as 1.1
    (2, "version: 1.10", (2, 10), "version", 'quote it and write all three parts: version: "1.10.0"'),
    (2, "version: 1", (2, 10), "version", 'quote it and write all three parts: version: "1.0.0"'),
    (2, "version: 1.0e+3", (2, 10), "version", "as a number (1000.0)"),
    (2, 'version: "1.10"', (2, 10), "version", "1.10.0"),
    (2, 'version: "v1.0.0"', (2, 10), "version", "drop the 'v'"),
    (2, 'version: "01.0.0"', (2, 10), "version", "leading zero"),
    (2, 'version: "1.0.0\\n"', (2, 10), "version", "not a SemVer"),
    (2, "version:", (2, 9), "version", "has no value"),
    (2, "version: [1, 2]", (2, 10), "version", "must be text, not a list"),
    # name
    (1, "name: Hello", (1, 7), "name", "not a slug"),
    (1, "name: -hello", (1, 7), "name", "not a slug"),
    (1, "name: hel--lo", (1, 7), "name", "not a slug"),
    (1, "name: my_plugin", (1, 7), "name", "my-plugin"),
    (1, "name: " + "a" * 65, (1, 7), "name", "limit is 64"),
    (1, "name: hеllo", (1, 7), "name", "CYRILLIC SMALL LETTER IE"),
    (1, "name: hеllo", (1, 7), "name", "plain ASCII: hello"),
    (1, "name: ｈello", (1, 7), "name", "FULLWIDTH"),
    (1, "name: yes", (1, 7), "name", "as a boolean"),
    (1, "name: 2024-01-01", (1, 7), "name", "as a date"),
    (1, 'name: ""', (1, 7), "name", "empty"),
    # description
    (3, 'description: ""', (3, 14), "description", "empty"),
    (3, 'description: "   "', (3, 14), "description", "empty"),
    (3, "description: " + "x" * 1001, (3, 14), "description", "limit is 1000"),
    (3, 'description: "a\\u0007b"', (3, 14), "description", "control character U+0007"),
    (3, "description: 12", (3, 14), "description", "must be text"),
    # author
    (4, "author: Ada", (4, 9), "author", "Name <email>"),
    (4, 'author: "<ada@example.org>"', (4, 9), "author", "there is no name before the '<'"),
    (4, 'author: "Ada <ada>"', (4, 9), "author", "the email part 'ada' is not an email address"),
    (4, 'author: "Ada\\nLovelace <ada@example.org>"', (4, 9), "author", "control character"),
    # license
    (5, "license: Apache2", (5, 10), "license", "'Apache-2.0'"),
    (5, "license: mit", (5, 10), "license", "'MIT'"),
    (5, "license: GPL-3.0", (5, 10), "license", "GPL-3.0-only or GPL-3.0-or-later"),
    (5, "license: MIT and Apache-2.0", (5, 10), "license", "upper case"),
    (5, 'license: "(MIT OR Apache-2.0"', (5, 10), "license", "parentheses"),
    (5, "license: MIT OR", (5, 10), "license", "ends too early"),
    (5, "license: Apache-2.0 WITH Nonsense-exception", (5, 10), "license", "exception"),
    (5, "license: TotallyMadeUp-9", (5, 10), "license", "LicenseRef-"),
    # runtime
    (7, "  type: wasm", (7, 9), "runtime.type", "runtime.type wasm is not supported yet; use docker"),
    (7, "  type: Docker", (7, 9), "runtime.type", "lower case"),
    (7, "  type: podman", (7, 9), "runtime.type", "only supported type is docker"),
    (8, "  image: r.example/Cortex/hello:1", (8, 10), "runtime.image", "must be lower case"),
    (8, f"  image: r.example/x@sha256:{'AB' * 32}", (8, 10), "runtime.image", "lower-case hex"),
    (8, f"  image: r.example/x@sha512:{'ab' * 64}", (8, 10), "runtime.image", "not supported"),
    (8, "  image: r.example/x@sha256:abc", (8, 10), "runtime.image", "64 hex digits"),
    (8, "  image: https://r.example/x", (8, 10), "runtime.image", "URL scheme"),
    (8, "  image: r.example/x:-bad", (8, 10), "runtime.image", "tag"),
    (8, "  image: r.example:port/x", (8, 10), "runtime.image", "host"),
    (8, "  image: r.example/", (8, 10), "runtime.image", "no repository"),
    (8, "  image: r.example/a..b", (8, 10), "runtime.image", "not valid"),
    (8, '  image: ""', (8, 10), "runtime.image", "empty"),
    (8, '  image: "r.example/x y"', (8, 10), "runtime.image", "whitespace"),
    # capabilities
    (10, "  - name: Greet!", (10, 11), "capabilities[0].name", "not a slug"),
    (11, "    endpoint: greet", (11, 15), "capabilities[0].endpoint", "write endpoint: /greet"),
    (11, "    endpoint: /a/../b", (11, 15), "capabilities[0].endpoint", "'..'"),
    (11, '    endpoint: "/a b"', (11, 15), "capabilities[0].endpoint", "whitespace"),
    (11, "    endpoint: /a?x=1", (11, 15), "capabilities[0].endpoint", "query"),
    (11, "    endpoint: //evil", (11, 15), "capabilities[0].endpoint", "empty segment"),
    (11, "    endpoint: /a<b>", (11, 15), "capabilities[0].endpoint", "not allowed"),
    (12, "    method: get", (12, 13), "capabilities[0].method", "write method: GET"),
    (12, "    method: FETCH", (12, 13), "capabilities[0].method", "not an HTTP method"),
    (12, "    method: 1", (12, 13), "capabilities[0].method", "as a number"),
    (13, "  - name: greet", (13, 11), "capabilities[1].name", "already used by capabilities[0]"),
    (16, "    descriptoin: Echoes.", (16, 5), "capabilities[1].descriptoin",
     "did you mean `description`?"),
    # trust
    (18, "  min_cortex_version: 0.1", (18, 23), "trust.min_cortex_version",
     'quote it: min_cortex_version: "0.1"'),
    (18, '  min_cortex_version: "latest"', (18, 23), "trust.min_cortex_version", "MAJOR.MINOR"),
    (19, "  network: yes", (19, 12), "trust.network", "not a strict boolean"),
    (19, "  network: True", (19, 12), "trust.network", "write network: true"),
    (19, '  network: "true"', (19, 12), "trust.network", "text, not a boolean"),
    (19, "  network: 1", (19, 12), "trust.network", "not a number"),
    (19, "  network: [true]", (19, 12), "trust.network", "must be true or false, not a list"),
    (19, "  netwrok: true", (19, 3), "trust.netwrok", "did you mean `network`?"),
    (19, "  sandbox: off", (19, 12), "trust.sandbox", "write sandbox: false"),
    (19, "  filesystem: ~", (19, 15), "trust.filesystem", "must be true or false"),
    (17, "trust: {min_cortex_version: '0.1.0', sandbox: 'false'}", (17, 47), "trust.sandbox",
     "text, not a boolean"),
])
def test_rule_violation_is_located(line: int, text: str, at: tuple[int, int], field: str,
                                   fragment: str) -> None:
    source = with_line(line, text)
    if line == 17:  # the flow mapping replaces the whole trust section
        source = "\n".join(source.splitlines()[:17]) + "\n"
    problems = problems_of(source)
    matching = [p for p in problems if p.field == field]
    assert matching, problems
    p = matching[0]
    assert (p.line, p.column) == at, p
    assert fragment in p.problem + " (fix: " + p.fix, p
    assert p.path == "m.yaml"


def test_unknown_top_level_field_lists_allowed_fields() -> None:
    problems = problems_of(BASE + "homepage: https://example.org\n")
    (p,) = problems
    assert (p.line, p.column, p.field) == (20, 1, "homepage")
    assert "unknown field `homepage`" in p.problem
    assert "allowed here: name, version" in p.fix


def test_typo_of_required_field_reports_both_unknown_and_missing() -> None:
    problems = problems_of(with_line(1, "nmae: hello"))
    by_field = {p.field: p for p in problems}
    assert "did you mean `name`?" in by_field["nmae"].fix
    assert (by_field["nmae"].line, by_field["nmae"].column) == (1, 1)
    assert "missing required field `name`" in by_field["name"].problem


def test_missing_nested_field_points_at_its_parent_key() -> None:
    source = "\n".join([*BASE.splitlines()[:17], "  network: true"]) + "\n"
    (p,) = problems_of(source)
    assert (p.line, p.column, p.field) == (17, 1, "trust.min_cortex_version")
    assert 'min_cortex_version: "0.1.0"' in p.fix


def test_every_missing_top_level_field_is_reported() -> None:
    problems = problems_of("name: hello\n")
    assert {p.field for p in problems} == {"version", "description", "author", "license",
                                           "runtime", "capabilities", "trust"}
    assert all((p.line, p.column) == (1, 1) for p in problems)


@pytest.mark.parametrize("replacement, fragment", [
    ("capabilities: []", "needs at least one entry"),
    ("capabilities: {name: greet}", "must be a list, not a mapping"),
    ("capabilities: [greet]", "a capability must be a mapping, not text"),
    ("capabilities:", "must be a list"),
])
def test_capabilities_shape(replacement: str, fragment: str) -> None:
    lines = BASE.splitlines()
    source = "\n".join([*lines[:8], replacement, *lines[16:]]) + "\n"
    problems = problems_of(source)
    assert any(fragment in p.problem and p.line == 9 for p in problems), problems


def test_runtime_must_be_a_mapping() -> None:
    lines = BASE.splitlines()
    source = "\n".join([*lines[:5], "runtime: docker", *lines[8:]]) + "\n"
    (p,) = problems_of(source)
    assert (p.line, p.column, p.field) == (6, 10, "runtime")
    assert "must be a mapping, not text" in p.problem


def test_duplicate_route_is_refused() -> None:
    source = with_line(14, "    endpoint: /greet", with_line(15, "    method: GET"))
    (p,) = problems_of(source)
    assert (p.line, p.field) == (14, "capabilities[1].endpoint")
    assert "GET /greet is already declared" in p.problem


def test_capability_description_may_be_omitted_or_null_but_not_empty() -> None:
    assert parse_manifest(with_line(16, "    description: ~")).capabilities[1].description is None
    (p,) = problems_of(with_line(16, '    description: ""'))
    assert p.field == "capabilities[1].description"


@pytest.mark.parametrize("ref, domain, path, tag, digest", [
    ("hello", None, "hello", None, None),
    ("cortex/hello:1.0", None, "cortex/hello", "1.0", None),
    ("localhost/hello", "localhost", "hello", None, None),
    ("localhost:5000/a/b_c__d-e.f:v1", "localhost:5000", "a/b_c__d-e.f", "v1", None),
    (f"127.0.0.1:5000/cortex/hello@{DIGEST}", "127.0.0.1:5000", "cortex/hello", None, DIGEST),
    (f"[::1]:5000/x:t@{DIGEST}", "[::1]:5000", "x", "t", DIGEST),
    ("Registry.Example.ORG/team/x", "Registry.Example.ORG", "team/x", None, None),
])
def test_image_references(ref: str, domain: str | None, path: str, tag: str | None,
                          digest: str | None) -> None:
    r = parse_image_ref(ref)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)


def test_models_are_frozen_and_strict_in_python_too() -> None:
    m = parse_manifest(BASE)
    with pytest.raises(ValidationError):
        m.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        TrustSpec(min_cortex_version="0.1.0", network="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RuntimeSpec(type="wasm", image="x")  # type: ignore[arg-type]
    cap = Capability(name="a", endpoint="/a", method="GET")
    with pytest.raises(ValidationError):
        Manifest(name="x", version="1.0.0", description="d", author="A <a@b.c>", license="MIT",
                 runtime=RuntimeSpec(type="docker", image="x"), capabilities=(cap, cap),
                 trust=TrustSpec(min_cortex_version="0.1.0"))


def test_manifest_facts() -> None:
    m = parse_manifest(BASE)
    facts = manifest_facts(m)
    assert isinstance(facts, ManifestFacts)
    assert facts.valid is True and facts.problems == []
    assert facts.document == m.to_document()
    with pytest.raises(ManifestError) as info:
        parse_manifest(with_line(19, "  netwrok: true"), source="p/manifest.yaml")
    bad = manifest_facts(info.value)
    assert bad.valid is False and bad.document is None
    assert bad.problems == ["p/manifest.yaml:19:3: trust.netwrok: unknown field `netwrok` "
                            "(fix: did you mean `network`?)"]


# --- files ----------------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    (p,) = info.value.problems
    assert (p.line, p.column) == (1, 1) and "not found" in p.problem and p.fix


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert "directory" in info.value.problems[0].problem
    assert "manifest.yaml" in info.value.problems[0].fix


def test_path_with_nul(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not a valid path"):
        load_manifest(f"{tmp_path}/a\x00b.yaml")


def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="not a regular file"):
        load_manifest(fifo)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(BASE)
    f.chmod(0)
    if os.geteuid() == 0:
        # root reads files regardless of permissions (and CI runs as root): have the open fail
        # the way it does for everyone else, so the translation into ManifestError is still tested.
        real_open = os.open

        def denying_open(path: object, *args: object, **kwargs: object) -> int:
            if str(path) == str(f):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", denying_open)
    with pytest.raises(ManifestError, match="permission denied"):
        load_manifest(f)


def test_oversized_file(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_bytes(BASE.encode() + b"#" * (65 * 1024) + b"\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(f)
    (p,) = info.value.problems
    # The size comes from fstat before anything is read (the bounded read is tested in test_files.py).
    assert f"the manifest is {f.stat().st_size} bytes; the limit is 65536" in p.problem


def test_path_is_named_in_problems(tmp_path: Path) -> None:
    f = tmp_path / "manifest.yaml"
    f.write_text(with_line(2, "version: 1.10"))
    with pytest.raises(ManifestError) as info:
        load_manifest(f)
    assert str(info.value).startswith(f"{f}:2:10: version: ")


# --- schema ---------------------------------------------------------------------------------

def test_schema_file_is_generated_from_the_model() -> None:
    on_disk = json.loads((ROOT / "cortex_trust/schemas/manifest.schema.json").read_text())
    assert on_disk == manifest_json_schema(), (
        "regenerate: .venv/bin/cortex manifest schema > cortex_trust/schemas/manifest.schema.json")


def test_schema_is_strict_draft_2020_12() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    objects = [schema, *schema["$defs"].values()]
    assert all(o.get("additionalProperties") is False for o in objects)
    assert set(schema["required"]) == {"name", "version", "description", "author", "license",
                                       "runtime", "capabilities", "trust"}
    assert schema["$defs"]["TrustSpec"]["properties"]["network"]["default"] is False
    assert schema["$defs"]["RuntimeSpec"]["properties"]["type"]["const"] == "docker"


def test_schema_accepts_valid_and_rejects_invalid_samples() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(manifest_json_schema())
    for path in sorted((FIXTURES / "valid").glob("*.yaml")):
        assert validator.is_valid(load_manifest(path).to_document()), path
    doc = parse_manifest(BASE).to_document()
    for mutate in (
        lambda d: d.update(version="1.10"),
        lambda d: d.update(name="Hello"),
        lambda d: d["trust"].update(netwrok=True),
        lambda d: d["runtime"].update(type="wasm"),
        lambda d: d["capabilities"][0].update(method="get"),
        lambda d: d["runtime"].update(image="upper/Case"),
    ):
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        assert not validator.is_valid(bad), bad
