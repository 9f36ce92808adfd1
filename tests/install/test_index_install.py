"""End to end through the signed index: a registry publishes and keeps its index current, a
static server serves the index, and the installer reads everything through TUF: install with
the registry's API down, revocation, staleness carried into the policy, and an air-gapped
``file://`` copy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.install import CortexConfig, RegistryEntry, save_config
from tests.install.conftest import cortex, install_now, installer, root_opt
from tests.support.federation import PLATFORM_VERSION, Federation, RegistryServer
from tests.support.static_index import serve_dir


@pytest.fixture
def indexed(tmp_path: Path, registry_evaluator: Any, private_sigstore: Any) -> Iterator[Federation]:
    """A public registry, and a private one keeping a signed index."""
    public = RegistryServer("public", tmp_path, registry_evaluator,
                            private_sigstore.trusted_root_path).start()
    private = RegistryServer("acme-internal", tmp_path / "acme", registry_evaluator,
                             private_sigstore.trusted_root_path, private=True, index=True)
    (tmp_path / "acme").mkdir()
    private.start()
    fed = Federation(public=public, private=private, home=tmp_path / "home",
                     sigstore=private_sigstore, reader_token=private.token("acme", "installation"))
    try:
        yield fed
    finally:
        public.close()
        private.close()


def _configure(fed: Federation, index_url: str, **kw: Any) -> None:
    save_config(fed.config_path, CortexConfig(
        registry=fed.public.url, platform_version=PLATFORM_VERSION,
        registries=(RegistryEntry(name="acme", url=fed.private.url, scopes=("acme/*",),
                                  token_env="ACME_REGISTRY_TOKEN", index_url=index_url, **kw),)))


def _index_dir(fed: Federation) -> Path:
    keeper = fed.private.app.state.index_keeper
    assert keeper.wait_idle(60) and keeper.error is None, keeper.error
    return Path(keeper.repo.dir)


def test_publish_index_install_with_the_registry_down(indexed: Federation) -> None:
    fed = indexed
    digest = fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    with serve_dir(_index_dir(fed)) as cdn:
        root = _index_dir(fed) / "metadata" / "1.root.json"
        r = cortex(fed, "config", "registries", "add", "acme", fed.private.url, "--scope", "acme/*",
                   "--token-env", "ACME_REGISTRY_TOKEN", "--index-url", cdn.url, "--index-root",
                   str(root))
        assert r.exit_code == 0 and "read through its index" in r.stdout, r.output
        fed.private.stop()  # every read now has to come from the index
        r = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--format", "json",
                   *root_opt(fed))
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert (doc["version"], doc["digest"], doc["registry"]) == ("1.0.0", digest, "acme")
        assert any(p.startswith("/targets/plugins/acme/tool/") for p in cdn.requests)
        r = cortex(fed, "plugin", "search", "tool", "--source", "registry", "--format", "json")
        assert r.exit_code == 0 and "acme/tool" in r.stdout, r.output


@contextmanager
def _installed_through_index(fed: Federation) -> Iterator[tuple[Any, datetime]]:
    """``acme/tool`` 1.0.0 published, its index served, and installed through it now."""
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    with serve_dir(_index_dir(fed)) as cdn:
        _configure(fed, cdn.url)
        now = datetime.now(UTC)
        with installer(fed) as inst:
            install_now(inst, "acme/tool", now=now)
            yield inst, now


def test_a_revocation_reaches_clients_through_the_index(indexed: Federation) -> None:
    fed = indexed
    with _installed_through_index(fed) as (inst, now):
        assert inst.check_run("acme/tool", now=now).allowed
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        _index_dir(fed)
        check = inst.check_run("acme/tool", now=datetime.now(UTC))
        assert check.revoked and not check.allowed and "REVOKED" in check.decision.codes
        r = cortex(fed, "plugin", "sync")
        assert r.exit_code == 0 and "REVOKED: acme/tool@1.0.0" in r.stdout, r.output


def test_index_data_ages_from_its_signed_timestamp_not_from_the_read(indexed: Federation) -> None:
    """A mirror that stops updating (frozen) still serves an unexpired timestamp for a while;
    the revocation data it carries is only as fresh as that timestamp was when signed, so the
    policy finds it stale a day later even though the read itself just happened."""
    with _installed_through_index(indexed) as (inst, now):
        later = inst.check_run("acme/tool", now=now + timedelta(hours=30))
    assert later.sync_error is None  # the index answered and verified...
    assert not later.allowed and "REVOCATION_STALE" in later.decision.codes  # ...as of then


def test_an_air_gapped_file_copy_installs(indexed: Federation, tmp_path: Path) -> None:
    from cortex_trust.sources import mirror_index

    fed = indexed
    digest = fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    copy = tmp_path / "usb" / "index"
    mirror_index(f"file://{_index_dir(fed)}", copy, cache_dir=tmp_path / "trust")
    fed.private.stop()
    _configure(fed, f"file://{copy}")
    with installer(fed) as inst:
        plan = inst.plan("acme/tool", now=datetime.now(UTC))
    assert (plan.version, plan.digest) == ("1.0.0", digest)


def test_an_index_that_does_not_verify_is_exit_3_never_an_install(indexed: Federation,
                                                                  tmp_path: Path) -> None:
    fed = indexed
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    www = _index_dir(fed)
    (found,) = (www / "targets" / "plugins" / "acme" / "tool").glob("*.versions.json")
    with serve_dir(www, override={f"/targets/plugins/acme/tool/{found.name}":
                                  found.read_bytes().replace(b"1.0.0", b"9.9.9")}) as evil:
        _configure(fed, evil.url)
        r = cortex(fed, "plugin", "install", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 3, r.output
    assert "failed TUF verification" in r.stderr
