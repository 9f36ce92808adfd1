"""Configuration and federation: scoped resolution, owner-only files, token redaction."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.errors import InputError
from cortex_trust.install import CortexConfig, RegistryEntry, load_config, redact, resolve_registry, save_config
from tests.support.hostile import refused_quickly

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


# ------------------------------------------------------- hostile files, URLs and credentials


@pytest.mark.security_review
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_config_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    raised = refused_quickly(lambda: load_config(fifo))
    assert isinstance(raised, InputError)


@pytest.mark.security_review
def test_config_that_is_a_device_is_refused() -> None:
    raised = refused_quickly(lambda: load_config(Path("/dev/zero")))
    assert isinstance(raised, InputError)


@pytest.mark.security_review
@pytest.mark.parametrize("url", [
    "https://registry\x1b[2J.example",
    "https://registry.example/\x1b]0;x\x07",
    "https://registry.example/a\x00b",
    "https://registry.example/\u202egnp",
])
def test_registry_urls_with_control_characters_are_refused(url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RegistryEntry(name="acme", url=url)


@pytest.mark.security_review
def test_config_set_never_echoes_credentials_in_a_url(tmp_path: Path) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    r = CliRunner().invoke(app, ["config", "set", "registry", "https://bob:s3cr3t-t0ken@registry.example"],
                           env=env)
    assert r.exit_code == 2
    assert "s3cr3t-t0ken" not in r.output
    assert "s3cr3t-t0ken" not in (tmp_path / "config.json").read_text() if (
        tmp_path / "config.json").exists() else True


@pytest.mark.security_review
def test_config_file_errors_never_echo_credentials(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"registry": "https://bob:s3cr3t-t0ken@registry.example"}))
    with pytest.raises(InputError) as exc:
        load_config(path)
    assert "s3cr3t-t0ken" not in str(exc.value)


@pytest.mark.security_review
def test_save_config_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    path = tmp_path / "config.json"
    (tmp_path / "config.json.tmp").symlink_to(victim)
    config = CortexConfig(registries=(RegistryEntry(name="acme", url="https://r.acme.example",
                                                    scopes=("acme/*",), token="s3cr3t-t0ken"),))
    save_config(path, config)
    assert victim.read_text() == "untouched\n"
    assert not path.is_symlink() and load_config(path) == config
    assert (path.stat().st_mode & 0o777) == 0o600
