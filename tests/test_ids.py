"""Identifiers have one definition (cortex_trust.ids), and it refuses look-alikes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cortex_trust.errors import InputError
from cortex_trust.ids import (
    DIGEST_PATTERN,
    PLUGIN_NAME_PATTERN,
    SLUG_PATTERN,
    ImageRefError,
    is_digest,
    is_image_path,
    is_image_tag,
    is_slug,
    parse_image_ref,
)

GOOD = "sha256:" + "a" * 64
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value", [GOOD, "sha256:" + "0123456789abcdef" * 4])
def test_digests(value: str) -> None:
    assert is_digest(value)


@pytest.mark.parametrize("value", [
    GOOD + "\n", "\n" + GOOD, GOOD.upper(), "sha256:" + "a" * 63, "sha256:" + "a" * 65,
    "sha512:" + "a" * 64, " " + GOOD, GOOD + " ", "", None, 5, b"sha256:" + b"a" * 64,
    "sha256:" + "g" * 64,
])
def test_digest_look_alikes(value: object) -> None:
    assert not is_digest(value)


@pytest.mark.parametrize("value", ["a", "acme", "a-b", "a--b", "0", "a" * 64, "9to5"])
def test_slugs(value: str) -> None:
    assert is_slug(value)


@pytest.mark.parametrize("value", [
    "", "-a", "a-", "A", "a_b", "a.b", "a" * 65, "acme\n", "\nacme", "ac me", "а", None, 1,
])
def test_slug_look_alikes(value: object) -> None:
    assert not is_slug(value)


def test_anchored_patterns_are_the_fragments() -> None:
    assert re.fullmatch(DIGEST_PATTERN[1:-1], GOOD)
    assert re.fullmatch(SLUG_PATTERN[1:-1], "acme")
    # a plugin name is a stricter slug: no empty part between hyphens
    assert re.fullmatch(PLUGIN_NAME_PATTERN[1:-1], "a-b") and not re.fullmatch(
        PLUGIN_NAME_PATTERN[1:-1], "a--b")


def test_one_definition_of_the_digest_and_slug_syntax() -> None:
    """grep for the digest or slug regular expression finds ids.py only."""
    needles = ("[0-9a-f]{64}", "[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
    hits = []
    for package in ("cortex_trust", "cli", "registry"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            hits += [f"{path.relative_to(ROOT)}: {n}" for n in needles if n in text]
    assert hits == [
        "cortex_trust/ids.py: [0-9a-f]{64}",
        "cortex_trust/ids.py: [a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?",
    ]



def test_no_hand_written_slug_character_class() -> None:
    """A bounded slug character class (``[a-z0-9-]{m,n}``) is written in ids.py only: a copy
    drifts (no anchor on the ends, ``$`` that lets a trailing newline through)."""
    needle = re.compile(r"\[a-z0-9-\]\{")
    hits = []
    for package in ("cortex_trust", "cli", "registry"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if needle.search(path.read_text(encoding="utf-8")):
                hits.append(str(path.relative_to(ROOT)))
    assert hits == ["cortex_trust/ids.py"]


D = "sha256:" + "c" * 64


# One parser, one grammar (the distribution rule container engines apply). Each row was parsed
# four different ways before (manifest, oci, inputs.image_digest, registry image_host).
@pytest.mark.parametrize(("ref", "host", "path", "digest"), [
    ("acme/tool:1.0", None, "acme/tool", None),
    (f"alpine@{D}", None, "alpine", D),
    (f"REG/x@{D}", "REG", "x", D),  # upper case: a host, not Docker Hub
    (f"[::1]:5000/x@{D}", "[::1]:5000", "x", D),
    (f"ghcr.io:123456/a@{D}", "ghcr.io:123456", "a", D),
    (f"localhost/a/b@{D}", "localhost", "a/b", D),
])
def test_one_image_grammar(ref: str, host: str | None, path: str, digest: str | None) -> None:
    r = parse_image_ref(ref)
    assert (r.host, r.path, r.digest) == (host, path, digest)
    assert str(r) == ref


@pytest.mark.parametrize("ref", [
    f"ghcr.io/a/b@x@{D}",  # two '@': the last one does not count as a pin
    f"ghcr.io/A/b@{D}",  # upper-case repository
    f"ghcr.io/a/b@{D}\n", f"ghcr.io/a/b@{D.upper()}", "ghcr.io/a/b@sha256:abc",
    "https://ghcr.io/a/b", "", "a b", "ghcr.io/a/b:-x",
])
def test_image_references_outside_the_grammar(ref: str) -> None:
    with pytest.raises(ImageRefError) as info:
        parse_image_ref(ref)
    assert isinstance(info.value, InputError) and info.value.problem and info.value.fix


@pytest.mark.security_review
@pytest.mark.parametrize("ref", ["127.0.0.1:5000/acme/hello@sha256:" + "a" * 64 + "\n",
                                 "127.0.0.1:5000/acme/hello:1.0\n@sha256:" + "a" * 64])
def test_oci_pinned_refs_with_a_newline_are_refused(ref: str) -> None:
    with pytest.raises(InputError):
        parse_image_ref(ref, require_host=True, require_digest=True)


def test_required_host_and_digest() -> None:
    with pytest.raises(ImageRefError, match="no registry host"):
        parse_image_ref(f"acme/tool@{D}", require_host=True)
    with pytest.raises(ImageRefError, match="not pinned"):
        parse_image_ref("ghcr.io/acme/tool:1", require_digest=True)
    r = parse_image_ref(f"ghcr.io/acme/tool:1@{D}", require_host=True, require_digest=True)
    assert r.pinned == f"ghcr.io/acme/tool@{D}" and r.repository == "ghcr.io/acme/tool"


def test_messages_name_what_is_parsed() -> None:
    with pytest.raises(ImageRefError, match=r"^runtime\.image contains whitespace"):
        parse_image_ref("a b", what="runtime.image")
    with pytest.raises(ImageRefError, match=r"^the image contains whitespace"):
        parse_image_ref("a b")


def test_path_and_tag_pieces() -> None:
    assert is_image_path("acme/my-plugin") and not is_image_path("Acme/x")
    assert not is_image_path("acme/x\n") and not is_image_path("acme//x")
    assert is_image_tag("1.0.0") and not is_image_tag("-x") and not is_image_tag("1\n")


def test_importing_ids_compiles_no_pattern() -> None:
    # Every CLI command imports this module; the patterns are compiled when first matched.
    import subprocess
    import sys

    probe = ("import dataclasses, functools, re, typing\nimport cortex_trust.errors\n"
             "compiled = []\nreal = re.compile\n"
             "re.compile = lambda *a, **k: compiled.append(a[0]) or real(*a, **k)\n"
             "import cortex_trust.ids as ids\nassert compiled == [], compiled\n"
             "assert ids.is_digest('sha256:' + 'a' * 64) and compiled\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
