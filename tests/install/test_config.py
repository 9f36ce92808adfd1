"""Configuration and federation: scoped resolution, owner-only files, token redaction."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cortex_trust.errors import InputError
from cortex_trust.install import CortexConfig, RegistryEntry, load_config, redact, resolve_registry, save_config

PUBLIC = "https://registry.cortexpersist.com"


def cfg() -> CortexConfig:
    return CortexConfig(registry=PUBLIC, registries=(
        RegistryEntry(name="acme", url="https://registry.internal.acme.com", scopes=("acme/*",),
                      token_env="ACME_TOKEN"),
        RegistryEntry(name="special", url="https://special.acme.com", scopes=("acme/special",)),
    ))


@pytest.mark.parametrize("name,registry", [
    ("acme/internal-plugin", "acme"),
    ("acme/special", "special"),          # the most specific scope wins
    ("cortex/core", "default"),
    ("acmex/tool", "default"),            # prefix look-alike is not the acme namespace
    ("other/acme", "default"),
])
def test_resolution_picks_exactly_one_registry(name: str, registry: str) -> None:
    assert resolve_registry(cfg(), name).name == registry


def test_default_registry_entry() -> None:
    assert resolve_registry(cfg(), "cortex/x").url == PUBLIC


def test_duplicate_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="claimed by both"):
        CortexConfig(registries=(RegistryEntry(name="a", url="https://a", scopes=("acme/*",)),
                                 RegistryEntry(name="b", url="https://b", scopes=("acme/*",))))


@pytest.mark.parametrize("kwargs", [
    {"name": "Acme", "url": "https://a"}, {"name": "a", "url": "ftp://a"}, {"name": "a", "url": "https://a b"},
    {"name": "a", "url": "https://a", "scopes": ("acme",)}, {"name": "a", "url": "https://a", "scopes": ("../x",)},
    {"name": "a", "url": "https://a", "token_env": "not-an-env"},
    {"name": "a", "url": "https://user:pw@a"},
    # Scopes use the one slug syntax (cortex_trust.ids.SLUG): no leading or trailing '-'.
    {"name": "a", "url": "https://a", "scopes": ("-acme/*",)},
    {"name": "a", "url": "https://a", "scopes": ("acme/x-",)},
])
def test_bad_entries_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RegistryEntry.model_validate(kwargs)


def test_save_is_owner_only_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "cfgdir" / "config.json"
    entry = RegistryEntry(name="acme", url="https://a", scopes=("acme/*",), token="s3cret-token")
    c = CortexConfig(registries=(entry,))
    save_config(path, c)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_config(path) == c
    assert c.redacted()["registries"][0]["token"] == "***"
    assert "s3cret-token" not in str(c.redacted())


def test_missing_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none.json") == CortexConfig()


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"registry": "nope"}', b'{"registrys": "https://x"}',
                                     b"x" * 300_000])
def test_bad_files_give_input_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_config(path)
    assert e.value.advice


def test_redact() -> None:
    assert redact("token abcd1234 leaked", ["abcd1234", None]) == "token *** leaked"
    assert redact("x", {"T": "abcd"}) == "x"


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        path = tmp_path / "dir-not-file"
        path.mkdir()
    else:
        path = tmp_path / "config.json"
        path.write_text("{}")
        path.chmod(0)
    with pytest.raises(InputError):
        load_config(path)


@pytest.mark.parametrize("kwargs", [
    {"name": "acme\n", "url": "https://a"}, {"name": "a", "url": "https://a\n"},
    {"name": "a", "url": "https://a", "scopes": ("acme/*\n",)}, {"name": "a", "url": "https://a", "token_env": "T\n"},
])
def test_trailing_newlines_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RegistryEntry.model_validate(kwargs)


@pytest.mark.parametrize("url,ok", [
    ("http://127.0.0.1:8080", True), ("http://localhost:1/x", True), ("http://[::1]:80", True),
    ("http://registry.acme.com", False), ("http://127.0.0.1.evil.com", False), ("http://localhost.evil.com", False),
    ("https://registry.acme.com", True),
])
def test_plain_http_only_to_this_machine(url: str, ok: bool) -> None:
    if ok:
        assert RegistryEntry(name="a", url=url).url == url.rstrip("/")
    else:
        with pytest.raises(ValueError, match="plain http"):
            RegistryEntry(name="a", url=url)
