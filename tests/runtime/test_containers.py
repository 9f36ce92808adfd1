"""The sandbox against the REAL container engine (Podman's Docker API) and OCI registry.

Every test here runs the hello test plugin (tests/images/hello) under a decision's sandbox and
checks the outcome inside the real container: endpoints reachable from the host, no way out to
the host's loopback, the sandbox gateway or another plugin (IPv4, ARP, IPv6 link-local, raw ARP),
also on a freshly created network, in a fresh network namespace, and on a fresh machine's first
run (a new network namespace with its own engine, set up by scripts/podman.sh), a read-only root,
no host files, a non-root user without capabilities and without user namespaces (seccomp),
enforced limits, digest pinning that survives a re-tag, and a runtime that refuses to start a
plugin whose isolation it cannot confirm (no or other firewall, an engine in another network
namespace). Network probes only ever target loopback, the sandbox gateway (servers this test
starts), the project's own containers, or namespaces this test creates.
"""

from __future__ import annotations

import dataclasses
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.models.containers
import pytest

from cortex_trust.errors import EvidenceError, InputError, UnavailableError
from cortex_trust.policy import Decision
from cortex_trust.runtime import ContainerRuntime, RunningPlugin, connect, container_spec
from cortex_trust.sources import OciClient
from tests.support.containers import (
    ROOT,
    HelloImage,
    UnfencedNetwork,
    build_image,
    drop_network,
    free_subnet,
    remove_local_image,
    unfenced_network,  # noqa: F401 (a fixture)
)

BB = "/bin/busybox"
PODMAN_SH = str(ROOT / "scripts" / "podman.sh")


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

    def start(decision: Decision, *, image: str | None = None,
              network: str = "cortex-sandbox") -> RunningPlugin:
        container_runtime.pull_pinned(image or hello_image.pinned)
        spec = container_spec(decision, plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                              image=image or hello_image.pinned, internal_network=network)
        started.append(spec.name)
        return container_runtime.start(spec)

    yield start
    for name in started:
        container_runtime.stop(name, timeout=1)
        if (vol := name + "-data") and _volume_exists(container_runtime, vol):
            container_runtime.client.volumes.get(vol).remove(force=True)


def _link_local(mac: str) -> str:
    """The IPv6 link-local address a kernel derives from ``mac`` (modified EUI-64)."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))


def _mac(rt: ContainerRuntime, name: str, network: str) -> str:
    mac = rt.client.containers.get(name).attrs["NetworkSettings"]["Networks"][network]["MacAddress"]
    assert mac and mac != "00:00:00:00:00:00"
    return str(mac)


def _arp(rt: ContainerRuntime, name: str) -> dict[str, tuple[int, str]]:
    """The container's ARP cache (/proc/net/arp): address -> (flags, MAC)."""
    code, out = _exec(rt, name, BB, "cat", "/proc/net/arp")
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {r[0]: (int(r[2], 16), r[3]) for r in rows}


def _gateway(rt: ContainerRuntime, network: str) -> str:
    return str(rt.client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"])


def _assert_plugins_isolated(rt: ContainerRuntime, a: RunningPlugin, b: RunningPlugin) -> None:
    """From plugin b, plugin a is unreachable and undiscoverable by IPv4, ARP and IPv6 link-local,
    with positive controls for every probe."""
    assert rt.call(a, "/health").status == 200  # the host reaches both
    assert rt.call(b, "/health").status == 200
    code, out = _wget(rt, b.name, f"http://{b.address}:{b.port}/health")
    assert code == 0 and '"ok"' in out  # positive control: b's wget works
    # IPv4.
    code, out = _wget(rt, b.name, f"http://{a.address}:{a.port}/health")
    assert code != 0 and '"ok"' not in out, out
    # ARP: the attempt above asked who has a's address; nobody may have answered. Positive
    # control: the same attempt towards the gateway (the host refuses the connection) resolves it.
    _wget(rt, b.name, f"http://{_gateway(rt, b.network)}:9/")
    arp = _arp(rt, b.name)
    assert arp.get(_gateway(rt, b.network), (0, ""))[0] & 0x2, arp
    mac_a = _mac(rt, a.name, a.network)
    assert not arp.get(a.address, (0, ""))[0] & 0x2, arp
    assert mac_a not in [m for _, m in arp.values()], arp
    # IPv6 link-local, computed from a's MAC (the engine shows it, since ARP did not): b has no
    # IPv6 at all, and the address is unreachable.
    code, out = _exec(rt, b.name, BB, "cat", "/proc/net/if_inet6")
    assert code == 0 and out.strip() == "", out
    code, out = _wget(rt, b.name, f"http://[{_link_local(mac_a)}%eth0]:{a.port}/health")
    assert code != 0 and '"ok"' not in out, out


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
    # network: a path to any host service listening on [::]. The plugin has no IPv6 at all, and
    # scripts/podman.sh also rejects anything from the bridge that is not a reply (shown with IPv6
    # on in test_the_bridge_drops_raw_arp_and_ipv6_between_containers).
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 in this kernel, so no IPv6 path to close")
    p = run_plugin(_decision(network=False))
    env = {**os.environ, **container_env}
    iface = subprocess.run(["podman", "network", "inspect", "--format", "{{.NetworkInterface}}",
                            p.network], env=env, capture_output=True, text=True, check=True
                           ).stdout.strip()
    link_local = _host_link_local(iface)
    server = _HostServer("::", family=socket.AF_INET6)
    try:
        _wait_host_reaches(link_local, iface, server.port)  # positive control: the server answers
        code, out = _wget(container_runtime, p.name, f"http://{p.address}:{p.port}/health")
        assert code == 0 and '"ok"' in out  # positive control: the plugin's wget works
        code, out = _exec(container_runtime, p.name, BB, "cat", "/proc/net/if_inet6")
        assert code == 0 and out.strip() == "", f"the plugin has IPv6 addresses: {out}"
        code, out = _wget(container_runtime, p.name, f"http://[{link_local}%eth0]:{server.port}/")
        assert code != 0 and "host secret" not in out
        assert server.hits == []
    finally:
        server.close()


def _host_link_local(iface: str) -> str:
    # A bridge gets its link-local address when its first port comes up: wait for it.
    for _ in range(50):
        addrs = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", iface], capture_output=True,
                               text=True, check=True).stdout
        found = [w.split("/")[0] for w in addrs.split() if w.startswith("fe80:")]
        if found:
            return found[0]
        time.sleep(0.1)
    pytest.fail(f"the bridge {iface} has no IPv6 link-local address")


def _wait_host_reaches(address: str, iface: str, port: int) -> None:
    # A fresh bridge's link-local address stays "tentative" for a moment, hence the retries.
    _wait_listening(f"{address}%{iface}", port, attempts=50, timeout=2,
                    failure=f"the host cannot reach its own [{address}%{iface}]:{port}")


def test_plugins_cannot_reach_each_other(container_runtime: ContainerRuntime, run_plugin: Any
                                         ) -> None:
    a = run_plugin(_decision())
    b = run_plugin(_decision())
    _assert_plugins_isolated(container_runtime, a, b)
    _assert_plugins_isolated(container_runtime, b, a)


def test_the_bridge_drops_raw_arp_and_ipv6_between_containers(
        container_env: dict[str, str], container_runtime: ContainerRuntime,
        hello_image: HelloImage) -> None:
    """Even two containers that kept IPv6 and raw sockets (root with NET_RAW, engine-default
    seccomp: what a plugin would have if its hardening were lost) exchange no frame on the
    sandbox bridge: the bridge itself drops raw ARP, IPv4 and IPv6 between them, and the host
    rejects their connections over IPv6 link-local."""
    container_runtime.pull_pinned(hello_image.pinned)
    _assert_bridge_drops(container_env, container_runtime, hello_image,
                         container_env["CORTEX_SANDBOX_NETWORK"])


def _assert_bridge_drops(container_env: dict[str, str], rt: ContainerRuntime, hello_image: HelloImage,
                         net: str) -> None:
    client = rt.client  # hello_image was pulled by the caller
    names = [f"cortex-test-raw-{secrets.token_hex(3)}" for _ in range(2)]
    server = _HostServer("::", family=socket.AF_INET6)
    try:
        for name in names:
            client.containers.run(hello_image.pinned, name=name, detach=True, network=net,
                                  user="0:0", cap_add=["NET_RAW"], read_only=True)
        a, b = (client.containers.get(n) for n in names)
        addr_a = a.attrs["NetworkSettings"]["Networks"][net]["IPAddress"]
        mac_a = a.attrs["NetworkSettings"]["Networks"][net]["MacAddress"]
        own_b = _link_local(b.attrs["NetworkSettings"]["Networks"][net]["MacAddress"])
        gateway = _gateway(rt, net)
        iface = _bridge(container_env, net)
        _wait_listening(addr_a, 8080)  # positive control: the host reaches a
        # Positive controls: raw ARP works (the gateway answers), IPv6 works (b reaches itself
        # on its link-local address once duplicate address detection is over).
        code, out = _exec(rt, names[1], BB, "arping", "-c", "1", "-w", "2", "-I", "eth0", gateway)
        assert code == 0 and "Received 1" in out, out
        for _ in range(50):
            code, out = _wget(rt, names[1], f"http://[{own_b}%eth0]:8080/health")
            if code == 0 or "Cannot assign requested address" not in out:
                break
            time.sleep(0.1)
        assert code == 0 and '"ok"' in out, out
        # Raw ARP for a: no reply.
        code, out = _exec(rt, names[1], BB, "arping", "-c", "2", "-w", "2", "-I", "eth0", addr_a)
        assert code != 0 and "Received 0" in out, out
        # IPv4 and IPv6 link-local (from a's MAC) to a: nothing.
        for url in (f"http://{addr_a}:8080/health", f"http://[{_link_local(mac_a)}%eth0]:8080/health"):
            code, out = _wget(rt, names[1], url)
            assert code != 0 and '"ok"' not in out, (url, out)
        # The host over IPv6 link-local: refused.
        host_ll = _host_link_local(iface)
        _wait_host_reaches(host_ll, iface, server.port)
        code, out = _wget(rt, names[1], f"http://[{host_ll}%eth0]:{server.port}/")
        assert code != 0 and "host secret" not in out and server.hits == []
    finally:
        server.close()
        for name in names:
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def fresh_network(container_env: dict[str, str]) -> Iterator[str]:
    """A sandbox network created now by the product's script (scripts/podman.sh with
    CORTEX_SANDBOX_NETWORK/SUBNET), whose bridge does not exist yet: its first plugins are the
    first ports of a new bridge, with the firewall loaded before it, as on a fresh machine."""
    name = f"cortex-fresh-{secrets.token_hex(3)}"
    env = {**os.environ, **container_env, "CORTEX_SANDBOX_NETWORK": name,
           "CORTEX_SANDBOX_SUBNET": free_subnet(container_env)}
    env.pop("CORTEX_SANDBOX_GATEWAY", None)
    try:
        out = subprocess.run([PODMAN_SH], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert f"export CORTEX_SANDBOX_NETWORK={name}" in out.stdout
        assert subprocess.run(["ip", "link", "show", _bridge(container_env, name)],
                              capture_output=True).returncode != 0, "the new bridge exists already"
        yield name
    finally:
        drop_network(container_env, name)


def test_isolation_holds_for_the_first_plugins_on_a_fresh_network(
        fresh_network: str, container_env: dict[str, str], container_runtime: ContainerRuntime,
        run_plugin: Any, hello_image: HelloImage) -> None:
    a = run_plugin(_decision(), network=fresh_network)
    b = run_plugin(_decision(), network=fresh_network)
    assert a.network == b.network == fresh_network
    _assert_plugins_isolated(container_runtime, a, b)
    _assert_plugins_isolated(container_runtime, b, a)
    _assert_bridge_drops(container_env, container_runtime, hello_image, fresh_network)


_NS_SERVER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8080))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"ok\\n")
    c.close()
"""

_NS_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], 8080), timeout=2) as c:
        print(c.recv(16).decode().strip())
except OSError as e:
    print(f"no: {e}")
    sys.exit(1)
"""


class _Lan:
    """A host (network namespace h, owning a bridge) and two plugins (namespaces a and b, veths
    on that bridge) with IPv4 and IPv6 on and root's raw sockets: nothing but the bridge and the
    host's firewall stands between them. With ``firewall``, ``scripts/podman.sh firewall`` loads
    the sandbox firewall into h *before* the bridge exists, which is the order of a fresh
    machine's first run (bridge netfilter registers its hooks when the first bridge appears)."""

    SUBNET = "10.89.250.0/24"
    ADDR: ClassVar[dict[str, str]] = {"h": "10.89.250.1", "a": "10.89.250.2", "b": "10.89.250.3"}
    LL: ClassVar[dict[str, str]] = {"h": "fe80::1", "a": "fe80::2", "b": "fe80::3"}

    def __init__(self, *, firewall: bool) -> None:
        tag = secrets.token_hex(3)
        self.ns = {k: f"cortex-t{tag}-{k}" for k in "hab"}
        self.bridge = f"ctbr{tag}"
        self.firewall = firewall
        self.servers: list[subprocess.Popen[str]] = []

    def _ip(self, ns: str, *args: str) -> None:
        subprocess.run(["ip", "-n", self.ns[ns], *args], check=True, capture_output=True, timeout=30)

    def _in(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns[ns], *cmd], check=check, capture_output=True,
                              text=True, timeout=30)

    def __enter__(self) -> _Lan:
        try:
            for k, ns in self.ns.items():
                subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=30)
                # No duplicate address detection: the link-local addresses work at once.
                self._in(k, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; "
                                        "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
                self._ip(k, "link", "set", "lo", "up")
            if self.firewall:
                fw = self._in("h", PODMAN_SH, "firewall", "lan", self.bridge, self.SUBNET, check=False)
                assert fw.returncode == 0, fw.stderr
            self._ip("h", "link", "add", self.bridge, "type", "bridge")
            self._ip("h", "link", "set", self.bridge, "up")
            self._ip("h", "addr", "add", f"{self.ADDR['h']}/24", "dev", self.bridge)
            self._ip("h", "addr", "add", f"{self.LL['h']}/64", "dev", self.bridge, "nodad")
            for k in "ab":
                port = f"ct{k}{self.bridge[4:]}"
                self._ip("h", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", self.ns[k])
                self._ip("h", "link", "set", port, "master", self.bridge, "up")
                self._ip(k, "addr", "add", f"{self.ADDR[k]}/24", "dev", "eth0")
                self._ip(k, "addr", "add", f"{self.LL[k]}/64", "dev", "eth0", "nodad")
                self._ip(k, "link", "set", "eth0", "up")
            for k in "ha":
                proc = subprocess.Popen(["ip", "netns", "exec", self.ns[k], sys.executable, "-c", _NS_SERVER],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.servers.append(proc)
                assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait(timeout=10)
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=30)

    def connect(self, src: str, address: str) -> bool:
        """Whether ``src`` gets the server's answer from ``address`` (IPv4, or IPv6 link-local)."""
        target = address if "." in address else f"{address}%{'eth0' if src != 'h' else self.bridge}"
        out = self._in(src, sys.executable, "-c", _NS_CLIENT, target, check=False)
        return out.returncode == 0 and out.stdout.strip() == "ok"

    def arp_replies(self, src: str, address: str) -> bool:
        """Whether a raw ARP request from ``src`` for ``address`` gets an answer."""
        out = self._in(src, BB, "arping", "-c", "2", "-w", "2", "-I", "eth0", address, check=False)
        assert "Received" in out.stdout, out.stdout + out.stderr
        return "Received 0" not in out.stdout


def test_first_run_isolation_in_a_fresh_network_namespace(container_env: dict[str, str]) -> None:
    """The sandbox firewall as a fresh machine's first run loads it (before the first bridge
    exists, so bridge netfilter registers after it) drops IPv4, raw ARP and IPv6 link-local
    between two plugins that have raw sockets and IPv6, and lets the host call a plugin but not
    the other way round; the same probes all succeed without the firewall. (``container_env``:
    scripts/podman.sh has installed nft and busybox.)"""
    with _Lan(firewall=False) as lan:  # positive controls: every probe can succeed
        assert lan.connect("b", lan.ADDR["a"]) and lan.connect("b", lan.LL["a"])
        assert lan.arp_replies("b", lan.ADDR["a"])
        assert lan.connect("b", lan.ADDR["h"]) and lan.connect("b", lan.LL["h"])
    with _Lan(firewall=True) as lan:
        assert lan.connect("h", lan.ADDR["a"]), "the host must reach the plugin"
        assert lan.arp_replies("b", lan.ADDR["h"]), "the host answers ARP (it must reach plugins)"
        assert not lan.connect("b", lan.ADDR["a"]), "IPv4 between plugins"
        assert not lan.arp_replies("b", lan.ADDR["a"]), "raw ARP between plugins"
        assert not lan.connect("b", lan.LL["a"]), "IPv6 link-local between plugins"
        assert not lan.connect("b", lan.ADDR["h"]), "IPv4 from a plugin to the host"
        assert not lan.connect("b", lan.LL["h"]), "IPv6 link-local from a plugin to the host"
        assert lan.connect("h", lan.ADDR["a"]), "the host must still reach the plugin"


@dataclasses.dataclass(frozen=True)
class _FreshMachine:
    """A network namespace set up as a fresh machine is: scripts/podman.sh, run in it with a state
    directory of its own, started an engine there and created and firewalled a new sandbox
    network, whose bridge (the namespace's first) does not exist yet."""

    netns: str
    env: dict[str, str]
    network: str

    def run(self, *cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the namespace (its network only: cgroups and /sys stay the host's, as the
        engine needs them)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *cmd],
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=timeout, check=False)


def _bridges_in(netns: str) -> str:
    return subprocess.run(["ip", "-n", netns, "-o", "link", "show", "type", "bridge"], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


@pytest.fixture
def fresh_machine(container_env: dict[str, str], container_runtime: ContainerRuntime,
                  hello_image: HelloImage) -> Iterator[_FreshMachine]:
    """A fresh machine's first run, in a new network namespace: nothing has made a bridge there,
    so bridge netfilter registers its hooks in it only when the engine creates the sandbox bridge
    for the first plugin, after the product's firewall was loaded. The hello image is pulled
    beforehand (the namespace's engine shares the host's image store, not its loopback)."""
    container_runtime.pull_pinned(hello_image.pinned)
    netns, state = f"cortex-fm-{secrets.token_hex(3)}", Path(tempfile.mkdtemp(prefix="cortex-fm-"))
    machine = _FreshMachine(netns=netns, network=netns, env={
        "CORTEX_STATE_DIR": str(state), "CORTEX_SANDBOX_NETWORK": netns,
        "CORTEX_SANDBOX_SUBNET": free_subnet(container_env)})
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, capture_output=True,
                       timeout=30)
        out = machine.run(PODMAN_SH)
        assert out.returncode == 0, out.stderr
        printed = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines()
                       if line.startswith("export "))
        assert printed["CORTEX_SANDBOX_NETWORK"] == netns
        assert printed["DOCKER_HOST"] != container_env["DOCKER_HOST"], "an engine of its own"
        machine.env.update(printed)
        assert _bridges_in(netns) == "", "the namespace has a bridge before its first plugin"
        yield machine
    finally:
        machine.run(PODMAN_SH, "stop", timeout=120)
        drop_network(container_env, netns)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False, timeout=30)
        shutil.rmtree(state, ignore_errors=True)


# Runs inside the fresh machine's namespace, where the host side of the plugins' bridge is.
_FIRST_PLUGINS = """
import json, secrets, subprocess, sys
from cortex_trust.runtime import connect, container_spec
from tests.support.containers import HelloImage
from tests.runtime.test_containers import _assert_bridge_drops, _assert_plugins_isolated, _decision

env, image = json.loads(sys.argv[1]), HelloImage(**json.loads(sys.argv[2]))
rt, started = connect(env["DOCKER_HOST"]), []
try:
    plugins = []
    for _ in range(2):
        spec = container_spec(_decision(), plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                              image=image.pinned, internal_network=env["CORTEX_SANDBOX_NETWORK"])
        started.append(spec.name)
        plugins.append(rt.start(spec))
    a, b = plugins
    bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                             text=True, check=True).stdout
    assert bridges.strip(), "the plugins run on a bridge of this namespace, created for them"
    _assert_plugins_isolated(rt, a, b)
    _assert_plugins_isolated(rt, b, a)
    _assert_bridge_drops(env, rt, image, env["CORTEX_SANDBOX_NETWORK"])
    print("isolated")
finally:
    for name in started:
        rt.stop(name, timeout=1)
"""


def test_plugins_are_isolated_on_a_fresh_machines_first_run(fresh_machine: _FreshMachine,
                                                            hello_image: HelloImage) -> None:
    """The first two plugins of a fresh machine, set up by the product's script and started by
    the runtime (isolation check included), cannot reach or discover each other (IPv4, ARP, IPv6
    link-local, both ways; raw frames from root containers too) while the host reaches both. A
    bridge chain at bridge netfilter's own priority fails here: loaded before the first bridge
    existed, it is skipped, and plugin b gets plugin a's answer until the firewall is reloaded."""
    out = fresh_machine.run(sys.executable, "-c", _FIRST_PLUGINS, json.dumps(fresh_machine.env),
                            json.dumps(dataclasses.asdict(hello_image)))
    assert out.returncode == 0 and out.stdout.strip() == "isolated", out.stdout + out.stderr


def test_start_refuses_an_engine_in_another_network_namespace(
        fresh_machine: _FreshMachine, container_env: dict[str, str], hello_image: HelloImage) -> None:
    """A firewall read in one network namespace says nothing about an engine whose bridges are in
    another: even with the product's tables for that network loaded here, start refuses (exit 3)
    and creates nothing. (The same start from the engine's own namespace succeeds: the test above.)"""
    bridge = _bridge(container_env, fresh_machine.network)
    subprocess.run([PODMAN_SH, "firewall", fresh_machine.network, bridge,
                    fresh_machine.env["CORTEX_SANDBOX_SUBNET"]], check=True, capture_output=True,
                   timeout=60)  # here, in the test's namespace; drop_network removes the tables
    rt = connect(fresh_machine.env["DOCKER_HOST"])
    spec = container_spec(_decision(), plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                          image=hello_image.pinned, internal_network=fresh_machine.network)
    with pytest.raises(UnavailableError, match="runs in another network namespace") as e:
        rt.start(spec)
    assert e.value.exit_code == 3 and "network namespace of the container engine" in (e.value.advice or "")
    assert rt.client.containers.list(all=True, filters={"name": spec.name}) == []


def test_start_refuses_a_network_whose_isolation_cannot_be_confirmed(
        container_runtime: ContainerRuntime, hello_image: HelloImage,
        unfenced_network: UnfencedNetwork) -> None:  # noqa: F811 (the fixture)
    net = unfenced_network
    container_runtime.pull_pinned(hello_image.pinned)
    spec = container_spec(_decision(), plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                          image=hello_image.pinned, internal_network=net.name)
    table = f"cortex_net_{net.name}"

    def refused(match: str) -> None:
        with pytest.raises(UnavailableError, match=match) as e:
            container_runtime.start(spec)
        assert e.value.exit_code == 3 and "scripts/podman.sh" in (e.value.advice or "")
        assert "cannot confirm that plugins on network" in str(e.value)
        assert container_runtime.client.containers.list(all=True, filters={"name": spec.name}) == []

    def nft(text: str) -> None:
        subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True, capture_output=True)

    def product_firewall() -> None:
        subprocess.run([PODMAN_SH, "firewall", net.name, net.bridge, net.subnet], check=True,
                       capture_output=True)

    refused(f"table bridge {table} cannot be read")  # no firewall at all
    product_firewall()
    # The bridge chain at priority 0, which bridge netfilter skips on a fresh machine's first run.
    nft(f"delete chain bridge {table} forward\n"
        f"table bridge {table} {{\nchain forward {{\ntype filter hook forward priority 0; policy accept;\n"
        f"ip saddr {net.subnet} drop\nip daddr {net.subnet} drop\narp saddr ip {net.subnet} drop\n"
        f"arp daddr ip {net.subnet} drop\n}}\n}}\n")
    refused("priority 0")
    product_firewall()
    # Only IPv4 closed between plugins (ARP open), as before.
    nft(f"flush chain bridge {table} forward\nadd rule bridge {table} forward ip saddr {net.subnet} "
        f"ip daddr {net.subnet} drop\n")
    refused("bridge chain forward holds")
    product_firewall()
    # Replies only, and nothing forwarded: an accept in front of the host's input rules.
    nft(f"insert rule inet {table} input iifname \"{net.bridge}\" accept\n")
    refused("inet chain input holds")
    product_firewall()
    p = container_runtime.start(spec)  # positive control: with the product's firewall it runs
    try:
        assert container_runtime.call(p, "/health").json() == {"status": "ok"}
    finally:
        container_runtime.stop(p.name, timeout=1)


def test_plugins_cannot_create_user_namespaces(
        container_env: dict[str, str], container_runtime: ContainerRuntime, run_plugin: Any,
        hello_image: HelloImage) -> None:
    p = run_plugin(_decision())
    for cmd in (("unshare", "-U", BB, "true"), ("unshare", "-U", "-r", "-n", "-m", BB, "true"),
                ("unshare", "-n", BB, "true"), ("nsenter", "-t", "1", "-U", BB, "true")):
        code, out = _exec(container_runtime, p.name, BB, *cmd)
        assert code != 0 and "Operation not permitted" in out, (cmd, out)
    code, out = _exec(container_runtime, p.name, BB, "mount", "-t", "tmpfs", "t", "/tmp")
    assert code != 0, out
    code, status = _exec(container_runtime, p.name, BB, "cat", "/proc/1/status")
    assert "Seccomp:\t2" in status
    # It still does its job.
    greet = container_runtime.call(p, "/greet", method="POST", data={"name": "Ada"})
    assert greet.status == 200 and greet.json()["greeting"] == "hello, Ada"
    # Positive control: the same image, user and capability drop under the engine's default
    # seccomp profile creates a user namespace holding every capability with the same command;
    # and the runtime refuses to call such a container.
    name = f"cortex-hello-ctl{secrets.token_hex(3)}"
    try:
        container_runtime.client.containers.run(
            hello_image.pinned, name=name, detach=True, network=container_env["CORTEX_SANDBOX_NETWORK"],
            user="65534:65534", cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
            labels={"io.cortex.managed": "true", "io.cortex.endpoints.port": "8080",
                    "io.cortex.plugin.digest": hello_image.digest})
        code, out = _exec(container_runtime, name, BB, "unshare", "-U", "-r", "-n", "-m", BB, "grep",
                          "CapEff", "/proc/self/status")
        assert code == 0 and int(out.split()[-1], 16) != 0, out
        control = container_runtime.running(name)
        assert control is not None
        _wait_listening(control.address, control.port)
        with pytest.raises(UnavailableError, match="without the plugin seccomp profile"):
            container_runtime.call(control, "/health")
    finally:
        container_runtime.stop(name, timeout=1)


def test_a_container_created_without_the_profile_is_refused(
        container_runtime: ContainerRuntime, hello_image: HelloImage,
        monkeypatch: pytest.MonkeyPatch) -> None:
    container_runtime.pull_pinned(hello_image.pinned)
    spec = container_spec(_decision(), plugin=f"hello-{secrets.token_hex(3)}", version="0.1.0",
                          image=hello_image.pinned)
    # A spec without the profile never reaches the engine.
    for bad in (dataclasses.replace(spec, seccomp_profile="{}"), dataclasses.replace(spec, sysctls=())):
        with pytest.raises(InputError, match="seccomp profile"):
            container_runtime.start(bad)
    # An engine that drops the option: the created container is refused before it starts.
    create = docker.models.containers.ContainerCollection.create

    def dropping(self: Any, image: str, **kwargs: Any) -> Any:
        kwargs["security_opt"] = [o for o in kwargs["security_opt"] if not o.startswith("seccomp=")]
        return create(self, image, **kwargs)

    monkeypatch.setattr(docker.models.containers.ContainerCollection, "create", dropping)
    with pytest.raises(UnavailableError, match="created without the plugin seccomp profile") as e:
        container_runtime.start(spec)
    assert e.value.exit_code == 3
    assert container_runtime.client.containers.list(all=True, filters={"name": spec.name}) == []


def _bridge(container_env: dict[str, str], network: str) -> str:
    return subprocess.run(["podman", "network", "inspect", "--format", "{{.NetworkInterface}}", network],
                          env={**os.environ, **container_env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def _wait_listening(address: str, port: int, *, attempts: int = 100, timeout: float = 1,
                    failure: str | None = None) -> None:
    for _ in range(attempts):
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(failure or f"nothing listens on {address}:{port}")


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
    project = Path(__file__).resolve().parents[2]
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

