"""The sandbox against the REAL container engine (Podman's Docker API) and OCI registry.

Every test here runs the hello test plugin (tests/images/hello) under a decision's sandbox and
checks the outcome inside the real container: endpoints reachable from the host, no way out to
the host's loopback, the sandbox gateway or another plugin, a read-only root, no host files, a
non-root user without capabilities, enforced limits, and digest pinning that survives a re-tag.
Network probes only ever target loopback, the sandbox gateway (servers this test starts) or the
project's own containers.
"""

from __future__ import annotations

import http.server
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from cortex_trust.containers import ContainerRuntime, RunningPlugin
from cortex_trust.decision import Decision
from cortex_trust.errors import EvidenceError, InputError, UnavailableError
from cortex_trust.oci import OciClient
from cortex_trust.sandbox import container_spec
from tests._container_fixtures import HelloImage, build_image, remove_local_image

BB = "/bin/busybox"


def _decision(*, network: bool = False, filesystem: bool = False, memory: str = "64m",
              pids: int = 64, action: str = "notice") -> Decision:
    return Decision.model_validate({
        "tier": "community", "action": action,
        "reasons": [{"code": "TIER_COMMUNITY", "message": "scan and tests passed"}],
        "sandbox": {"enabled": True, "network": network, "filesystem": filesystem,
                    "read_only_root": True, "cap_drop": ["ALL"], "no_new_privileges": True,
                    "user": "65534:65534", "memory": memory, "cpus": 0.5, "pids_limit": pids},
        "next_tier": None, "overridable": False, "policy_revision": "test-rev-1",
    })


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"host secret\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _HostServer:
    """A tiny HTTP server on the host that counts the requests it gets."""

    def __init__(self, address: str, *, family: socket.AddressFamily = socket.AF_INET) -> None:
        hits: list[str] = []
        handler = type("H", (_Counter,), {"hits": hits})
        server_class = type("S", (http.server.ThreadingHTTPServer,), {"address_family": family})
        self.hits = hits
        self.httpd = server_class((address, 0), handler)
        self.address = address
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{address}:{self.port}/probe"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _exec(rt: ContainerRuntime, name: str, *cmd: str) -> tuple[int, str]:
    res = rt.client.containers.get(name).exec_run(list(cmd))
    return res.exit_code, res.output.decode("utf-8", "replace")


def _wget(rt: ContainerRuntime, name: str, url: str, *, seconds: int = 2) -> tuple[int, str]:
    # busybox 1.35's `wget -T` segfaults; bound the attempt with busybox timeout instead. Each
    # negative probe comes with a positive control, so a short bound cannot fake a "blocked".
    return _exec(rt, name, BB, "timeout", str(seconds), BB, "wget", "-q", "-O", "-", url)


@pytest.fixture
def run_plugin(container_runtime: ContainerRuntime, hello_image: HelloImage
               ) -> Iterator[Any]:
    """Start the hello plugin (under a unique plugin name) with a given decision; clean up."""
    started: list[str] = []

    def start(decision: Decision, *, image: str | None = None) -> RunningPlugin:
        container_runtime.pull_pinned(image or hello_image.pinned)
        spec = container_spec(decision, plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                              image=image or hello_image.pinned)
        started.append(spec.name)
        return container_runtime.start(spec)

    yield start
    for name in started:
        container_runtime.stop(name, timeout=1)
        if (vol := name + "-data") and _volume_exists(container_runtime, vol):
            container_runtime.client.volumes.get(vol).remove(force=True)


def _volume_exists(rt: ContainerRuntime, name: str) -> bool:
    try:
        rt.client.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


pytestmark = pytest.mark.slow


def test_endpoints_answer_from_the_host(container_runtime: ContainerRuntime, run_plugin: Any
                                        ) -> None:
    p = run_plugin(_decision())
    greet = container_runtime.call(p, "/greet", method="POST", data={"name": "Ada"})
    assert greet.status == 200
    assert greet.json() == {"greeting": "hello, Ada", "plugin": "hello", "version": "0.1.0"}
    assert container_runtime.call(p, "/health").json() == {"status": "ok"}
    assert container_runtime.call(p, "/undeclared").status == 404
    # Nothing is published on the host: the plugin is reachable only at its sandbox address.
    attrs = container_runtime.client.containers.get(p.name).attrs
    # (EXPOSE in the image lists 8080/tcp with no binding; a binding would carry a HostPort.)
    bindings = attrs["HostConfig"].get("PortBindings") or {}
    assert all(not b for b in bindings.values()), bindings
    assert all(not b for b in (attrs["NetworkSettings"].get("Ports") or {}).values())
    assert p.network == "cortex-sandbox"


def test_no_network_cannot_reach_host_loopback_or_gateway(
        container_runtime: ContainerRuntime, run_plugin: Any) -> None:
    p = run_plugin(_decision(network=False))
    net = container_runtime.client.networks.get(p.network).attrs
    assert net["Internal"] is True
    gateway = net["IPAM"]["Config"][0]["Gateway"]
    loop, gw = _HostServer("127.0.0.1"), _HostServer(gateway)
    try:
        # Positive controls: the servers work from the host, and wget works in the container.
        for server in (loop, gw):
            with socket.create_connection((server.address, server.port), timeout=2):
                pass
        code, out = _wget(container_runtime, p.name, f"http://{p.address}:{p.port}/health")
        assert code == 0 and '"ok"' in out
        loop.hits.clear()
        gw.hits.clear()
        for url in (loop.url, gw.url):
            code, out = _wget(container_runtime, p.name, url)
            assert code != 0, f"the sandbox reached {url}: {out}"
            assert "host secret" not in out
        assert loop.hits == [] and gw.hits == []
    finally:
        loop.close()
        gw.close()
    # No route out at all.
    code, out = _exec(container_runtime, p.name, BB, "ip", "route")
    assert code == 0 and "default" not in out


def test_no_network_cannot_reach_the_host_over_ipv6_link_local(
        container_env: dict[str, str], container_runtime: ContainerRuntime, run_plugin: Any) -> None:
    # The bridge always has an IPv6 link-local address on the host side, even on an IPv4-only
    # network: a path to any host service listening on [::]. scripts/podman.sh closes it.
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 in this kernel, so no IPv6 path to close")
    p = run_plugin(_decision(network=False))
    env = {**os.environ, **container_env}
    iface = subprocess.run(["podman", "network", "inspect", "--format", "{{.NetworkInterface}}",
                            p.network], env=env, capture_output=True, text=True, check=True
                           ).stdout.strip()
    addrs = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", iface], capture_output=True,
                           text=True, check=True).stdout
    link_local = next(w.split("/")[0] for w in addrs.split() if w.startswith("fe80:"))
    server = _HostServer("::", family=socket.AF_INET6)
    try:
        # Positive control: the server answers on that address from the host (a fresh bridge's
        # link-local address stays "tentative" for a moment, hence the retries).
        for _ in range(50):
            try:
                with socket.create_connection((f"{link_local}%{iface}", server.port), timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the host cannot reach its own [{link_local}%{iface}]")
        # Positive control for the probe: the same wget syntax reaches the plugin's own
        # link-local address, so a failure below is the firewall, not busybox.
        _, own = _exec(container_runtime, p.name, BB, "ip", "-6", "-o", "addr", "show", "dev", "eth0")
        own_ll = next(w.split("/")[0] for w in own.split() if w.startswith("fe80:"))
        # Its own link-local address is "tentative" (duplicate address detection) for a moment
        # after start too: until then binding to it fails ("Cannot assign requested address").
        for _ in range(50):
            code, out = _wget(container_runtime, p.name, f"http://[{own_ll}%eth0]:{p.port}/health")
            if code == 0 or "Cannot assign requested address" not in out:
                break
            time.sleep(0.1)
        assert code == 0 and '"ok"' in out, out
        code, out = _wget(container_runtime, p.name, f"http://[{link_local}%eth0]:{server.port}/")
        assert code != 0 and "host secret" not in out
        assert server.hits == []
    finally:
        server.close()


def test_plugins_cannot_reach_each_other(container_runtime: ContainerRuntime, run_plugin: Any
                                         ) -> None:
    a = run_plugin(_decision())
    b = run_plugin(_decision())
    assert container_runtime.call(a, "/health").status == 200  # the host reaches both
    assert container_runtime.call(b, "/health").status == 200
    code, out = _wget(container_runtime, b.name, f"http://{b.address}:{b.port}/health")
    assert code == 0 and '"ok"' in out  # positive control: b's wget works
    code, out = _wget(container_runtime, b.name, f"http://{a.address}:{a.port}/health")
    assert code != 0 and '"ok"' not in out


def test_granted_network_uses_the_bridge(container_runtime: ContainerRuntime, run_plugin: Any
                                         ) -> None:
    p = run_plugin(_decision(network=True))
    assert p.network != "cortex-sandbox"
    assert container_runtime.call(p, "/health").status == 200
    code, out = _exec(container_runtime, p.name, BB, "ip", "route")
    assert code == 0 and "default" in out


def test_root_filesystem_is_read_only_and_tmp_is_noexec(container_runtime: ContainerRuntime,
                                                        run_plugin: Any) -> None:
    p = run_plugin(_decision())
    code, out = _exec(container_runtime, p.name, BB, "touch", "/x")
    assert code != 0 and "Read-only file system" in out
    code, _ = _exec(container_runtime, p.name, BB, "touch", "/app/serve.sh")
    assert code != 0
    # /tmp is writable scratch space, but nothing written there can be executed.
    code, _ = _exec(container_runtime, p.name, BB, "cp", BB, "/tmp/bb")
    assert code == 0
    code, out = _exec(container_runtime, p.name, "/tmp/bb", "true")
    assert code != 0
    # Without a granted filesystem there is no /data at all.
    code, _ = _exec(container_runtime, p.name, BB, "test", "-e", "/data")
    assert code != 0


def test_granted_filesystem_is_a_dedicated_volume(container_runtime: ContainerRuntime,
                                                  run_plugin: Any) -> None:
    p = run_plugin(_decision(filesystem=True))
    mounts = container_runtime.client.containers.get(p.name).attrs["Mounts"]
    data = [m for m in mounts if m["Destination"] == "/data"]
    assert len(data) == 1 and data[0]["Type"] == "volume"
    assert data[0]["Name"] == f"{p.name}-data"
    assert not [m for m in mounts if m["Type"] == "bind" and m["Destination"] == "/data"]
    code, _ = _exec(container_runtime, p.name, BB, "sh", "-c", "echo kept > /data/x")
    assert code == 0


def test_sees_no_host_files(container_runtime: ContainerRuntime, run_plugin: Any) -> None:
    p = run_plugin(_decision())
    project = Path(__file__).resolve().parent.parent
    paths = ("/root", "/home", str(project), "/work", "/var/lib/containers", "/etc/shadow",
             "/usr", "/var/run/docker.sock", "/run/podman", "/proc/1/root/root")
    code, out = _exec(container_runtime, p.name, BB, "sh", "-c",
                      f"for p in {' '.join(paths)}; do {BB} test -e $p && echo $p; done; true")
    assert code == 0 and out.strip() == "", f"visible inside the sandbox: {out}"
    code, out = _exec(container_runtime, p.name, BB, "sh", "-c", f"{BB} test -e /bin && echo yes")
    assert out.strip() == "yes"  # positive control for the probe above
    # The engine writes the container's own /etc/passwd and /etc/group (for the sandbox user);
    # they are not the host's files.
    for path in ("/etc/passwd", "/etc/group"):
        code, out = _exec(container_runtime, p.name, BB, "stat", "-c", "%s", path)
        assert code == 0 and int(out) != Path(path).stat().st_size
    code, out = _exec(container_runtime, p.name, BB, "cat", "/etc/hostname")
    assert code == 0 and out.strip() == p.name.removeprefix("cortex-")
    assert out.strip() != socket.gethostname()
    code, out = _exec(container_runtime, p.name, BB, "ls", "-1", "/")
    allowed = {"app", "bin", "cortex-plugin.json", "dev", "etc", "proc", "run", "sys", "tmp",
               "var"}
    assert set(out.split()) <= allowed, out


def test_runs_as_non_root_without_capabilities(container_runtime: ContainerRuntime,
                                               run_plugin: Any) -> None:
    p = run_plugin(_decision())
    code, out = _exec(container_runtime, p.name, BB, "id", "-u")
    assert code == 0 and out.strip() == "65534"
    code, status = _exec(container_runtime, p.name, BB, "cat", "/proc/self/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap].strip(), 16) == 0, (cap, fields[cap])
    assert fields["NoNewPrivs"].strip() == "1"
    # PID 1 (the plugin's server) too, not just our exec.
    code, status1 = _exec(container_runtime, p.name, BB, "cat", "/proc/1/status")
    assert "Uid:\t65534" in status1


def test_limits_are_set_and_enforced(container_runtime: ContainerRuntime, run_plugin: Any) -> None:
    p = run_plugin(_decision(memory="48m", pids=16))
    hc = container_runtime.client.containers.get(p.name).attrs["HostConfig"]
    assert hc["Memory"] == 48 * 1024 * 1024
    assert hc["PidsLimit"] == 16
    assert hc["NanoCpus"] == 500_000_000
    assert hc["ReadonlyRootfs"] is True
    assert hc["Privileged"] is False
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert not hc.get("CapAdd")
    assert not hc.get("Binds")
    assert not hc.get("Devices")
    # The process limit really holds: 40 sleepers cannot all be started under a limit of 16.
    _, out = _exec(container_runtime, p.name, BB, "sh", "-c",
                   f"for i in $({BB} seq 40); do {BB} sleep 1 & done 2>&1; wait")
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
    labels = container_runtime.client.containers.get(p.name).labels
    assert labels["io.cortex.decision.policy_revision"] == "test-rev-1"
    assert labels["io.cortex.plugin.digest"] == p.digest


def test_stop_and_is_running(container_runtime: ContainerRuntime, run_plugin: Any) -> None:
    p = run_plugin(_decision())
    assert container_runtime.is_running(p.name)
    assert container_runtime.running(p.name) == p
    assert container_runtime.stop(p.name, timeout=2) is True
    assert not container_runtime.is_running(p.name)
    assert container_runtime.running(p.name) is None
    assert container_runtime.stop(p.name) is False
    with pytest.raises(UnavailableError):
        container_runtime.call(p, "/health", timeout=1)


def test_a_non_internal_network_is_refused_for_a_no_network_sandbox(
        container_runtime: ContainerRuntime, hello_image: HelloImage) -> None:
    container_runtime.pull_pinned(hello_image.pinned)
    spec = container_spec(_decision(network=False), plugin=f"hello-{secrets.token_hex(3)}",
                          version="0.1.0", image=hello_image.pinned, internal_network="podman")
    with pytest.raises(UnavailableError, match="not internal"):
        container_runtime.start(spec)
    assert not container_runtime.is_running(spec.name)


def test_pull_checks_name_and_version_labels(container_runtime: ContainerRuntime,
                                             hello_image: HelloImage) -> None:
    pulled = container_runtime.pull_pinned(hello_image.pinned, plugin="hello", version="0.1.0")
    assert pulled.digest == hello_image.digest
    with pytest.raises(EvidenceError, match="plugin name"):
        container_runtime.pull_pinned(hello_image.pinned, plugin="other")
    with pytest.raises(EvidenceError, match="plugin version"):
        container_runtime.pull_pinned(hello_image.pinned, version="0.2.0")
    with pytest.raises(InputError, match="not pinned"):
        container_runtime.pull_pinned(hello_image.tagged)


def test_retagged_image_is_detected_and_the_pin_holds(
        container_env: dict[str, str], container_runtime: ContainerRuntime,
        oci_client: OciClient, run_plugin: Any, tmp_path: Path) -> None:
    repository = f"acme/retag-{secrets.token_hex(4)}"
    original = build_image(container_env, tmp_path, repository=repository, tag="0.1.0",
                           oci_client=oci_client)
    oci_client.check_tag(repository, "0.1.0", expected_digest=original.digest)  # not moved yet
    # The publisher (or an attacker) pushes different content under the same tag.
    moved = build_image(container_env, tmp_path, repository=repository, tag="0.1.0",
                        greeting="pwned", oci_client=oci_client)
    remove_local_image(container_env, moved.local_tag)
    assert moved.digest != original.digest
    assert oci_client.resolve(repository, "0.1.0") == moved.digest
    with pytest.raises(EvidenceError, match="re-tagged"):
        oci_client.check_tag(repository, "0.1.0", expected_digest=original.digest)
    # The manifest bytes fetched by the old digest hash to the old digest.
    oci_client.fetch_manifest(repository, original.digest)
    # Pulling by the pinned digest still yields the original content.
    container_runtime.client.images.remove(original.local_tag, force=True)
    p = run_plugin(_decision(), image=original.pinned)
    assert container_runtime.call(p, "/greet", method="POST", data={}).json()["greeting"] == (
        "hello, world")
    # A digest the registry does not have is refused.
    wrong = f"{original.registry}/{repository}@sha256:{'0' * 64}"
    with pytest.raises(EvidenceError):
        container_runtime.pull_pinned(wrong)


def test_start_refuses_an_image_that_was_not_pulled(container_runtime: ContainerRuntime,
                                                    hello_image: HelloImage) -> None:
    absent = f"{hello_image.registry}/acme/never-pushed@sha256:{'1' * 64}"
    spec = container_spec(_decision(), plugin="hello-absent", version="0.1.0", image=absent)
    with pytest.raises(InputError, match="not pulled"):
        container_runtime.start(spec)

