"""`cortex plugin sync --watch` as a real process against a real `cortex registry serve` and the
real container engine (scripts/podman.sh). Slow: needs the engine (the fixtures fail, never
skip, without it).

Shown here: a running plugin whose version is revoked (by `cortex plugin revoke`, another real
process) is stopped by the watcher within seconds of the revoke call returning, with one line
saying so; SIGTERM then ends the watcher with exit 0. The plugin and its container have a name
unique to the run (tests run in parallel on one engine).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.install.test_usage_report import World, _serve
from tests.support.containers import build_image, remove_local_image
from tests.support.federation import manifest_text
from tests.support.served_registry import CORTEX
from tests.support.sigstore_mint import PrivateSigstore

pytestmark = pytest.mark.slow

CAPS = (("greet", "POST", "/greet"), ("health", "GET", "/health"))
#: Generous: the watcher is woken by the long-poll at once; the rest is one sync pass and
#: stopping the container, on a machine shared with other test runs.
BOUND_S = 15.0


def _read_until(out: Any, needle: str, *, within: float, seen: list[str]) -> None:
    """Read the watcher's lines into ``seen`` until one contains ``needle``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = out.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} from the watcher; it said: {seen}")


def test_watch_stops_a_revoked_running_plugin_within_seconds(
        tmp_path: Path, private_sigstore: PrivateSigstore, container_env: dict[str, str],
        oci_client: Any, container_runtime: Any) -> None:
    name = f"watch-{secrets.token_hex(4)}"
    container = f"cortex-{name}"
    image = build_image(container_env, tmp_path, repository=f"acme/{name}", tag="0.1.0",
                        oci_client=oci_client, plugin=name)
    engine = dict(container_env)
    watcher: subprocess.Popen[str] | None = None
    with _serve(tmp_path, private_sigstore, image.registry) as server:
        world = World(server=server, sigstore=private_sigstore, home=tmp_path / "home")
        world.configure(usage_token_env=None)
        try:
            world.publish(name, "0.1.0", repository=f"{image.registry}/{image.repository}",
                          digest=image.digest,
                          manifest=manifest_text(name, "0.1.0", image=image.tagged, caps=CAPS))
            r = world.cortex("plugin", "install", f"acme/{name}", "--yes", **engine)
            assert r.exit_code == 0, r.output
            r = world.cortex("plugin", "run", f"acme/{name}", **engine)
            assert r.exit_code == 0, r.output
            assert container_runtime.is_running(container)

            env = {**os.environ, **world.env(**engine)}
            watcher = subprocess.Popen([CORTEX, "plugin", "sync", "--watch"], env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
            assert watcher.stdout is not None
            seen: list[str] = []
            _read_until(watcher.stdout, "synced", within=60, seen=seen)  # the first pass
            time.sleep(1.0)  # its follower is waiting on the feed

            started = time.monotonic()
            revoke = subprocess.run(
                [CORTEX, "plugin", "revoke", f"acme/{name}@0.1.0", "--reason", "compromised build",
                 "--registry", server.url], capture_output=True, text=True, timeout=60,
                check=False, env={**env, "CORTEX_REGISTRY_TOKEN": world.token("acme", "publisher")})
            returned = time.monotonic()
            assert revoke.returncode == 0, revoke.stderr
            while container_runtime.is_running(container):
                assert time.monotonic() - returned < BOUND_S, \
                    f"still running {BOUND_S}s after the revocation"
                time.sleep(0.05)
            took = time.monotonic() - returned
            print(f"\nsync --watch stopped the revoked plugin {took:.2f}s after the revoke "
                  f"call returned ({time.monotonic() - started:.2f}s after it started)")
            assert took < BOUND_S
            _read_until(watcher.stdout, "REVOKED", within=30, seen=seen)
            assert seen[-1].startswith(f"REVOKED: acme/{name}@0.1.0 (") and \
                seen[-1].endswith("; its container was stopped"), seen

            watcher.send_signal(signal.SIGTERM)
            rest, _ = watcher.communicate(timeout=30)
            assert watcher.returncode == 0, seen + rest.splitlines()
            assert "stopped watching" in rest and "Traceback" not in rest, rest
        finally:
            if watcher is not None and watcher.poll() is None:
                watcher.kill()
                watcher.wait()
            world.cortex("plugin", "remove", f"acme/{name}", **engine)
            container_runtime.stop(container)
            remove_local_image(container_env, image.local_tag)
