"""Identifiers have one definition (cortex_trust.ids), and it refuses look-alikes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cortex_trust.ids import (
    DIGEST_PATTERN,
    PLUGIN_NAME_PATTERN,
    SLUG_PATTERN,
    is_digest,
    is_slug,
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
        "cortex_trust/manifest.py: [0-9a-f]{64}",  # the image grammar: one home after B3
    ]
