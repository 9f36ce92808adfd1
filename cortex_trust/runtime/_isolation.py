"""The isolation checks of the plugin sandbox, read from this machine's kernel and the engine.

Guarantees:

* Before a plugin starts on the internal network, this machine's kernel must show that network's
  isolation as scripts/podman.sh sets it up: bridge netfilter on, and the nft tables
  ``bridge cortex_net_<network>`` (no IPv4 or ARP frame with a sandbox address between two bridge
  ports, at a priority before bridge netfilter's) and ``inet cortex_net_<network>`` (only replies
  from the bridge to the host, nothing forwarded from or to it) with exactly those rules, read in
  the network namespace the engine itself runs in (where its bridges are). What cannot be
  confirmed (no such table, other rules, an engine on another machine or in another network
  namespace, not root) is refused with :class:`~cortex_trust.errors.UnavailableError`
  (:func:`confirm_isolation`).
* A container's configuration lacks the plugin hardening unless it carries the seccomp option
  (and no-new-privileges when decided) (:func:`missing_hardening`); a started container's first
  process must run, on this machine, under a seccomp filter with no IPv6 address
  (:func:`process_problem`). Anything that cannot be inspected is a problem.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import docker
from docker.models.containers import Container

from ..errors import UnavailableError

__all__ = [
    "ENGINE_ADVICE",
    "confirm_isolation",
    "engine_is_local",
    "missing_hardening",
    "process_problem",
]

#: The advice for an engine that does not answer or fails.
ENGINE_ADVICE: Final = "start the engine: eval \"$(scripts/podman.sh)\" (or start Docker)"
_ISOLATION_ADVICE: Final = ("set up the sandbox network's firewall as root on the engine's machine: "
                            "eval \"$(scripts/podman.sh)\" (with CORTEX_SANDBOX_NETWORK for another "
                            "network), then run the plugin again")
_NAMESPACE_ADVICE: Final = ("run cortex in the network namespace of the container engine, where "
                             "scripts/podman.sh loads the sandbox firewall (or use the engine it starts)")
#: The docker SDK's base URL for an engine on a local unix socket.
_LOCAL_ENGINE: Final = "http+docker://localhost"
_BRIDGE_NETFILTER: Final = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")
#: Bridge netfilter's own hooks run at priority 0; a bridge chain at the same priority may be
#: skipped for IPv4 and IPv6 (a later-registered equal-priority hook runs first and re-enters
#: after every priority-0 hook), so the sandbox's bridge chain must sort strictly before it.
_BRIDGE_NETFILTER_PRIORITY: Final = 0


def engine_is_local(client: docker.DockerClient) -> bool:
    """Whether the engine is on this machine (a unix socket), so its kernel state is ours."""
    return str(getattr(client.api, "base_url", "")) == _LOCAL_ENGINE


def _bridge_of(client: docker.DockerClient, network: str, attrs: dict[str, Any], *,
               podman: Callable[[], bool], call_timeout: float) -> str:
    """The host interface of ``network``'s bridge, as the engine reports it."""
    named = (attrs.get("Options") or {}).get("com.docker.network.bridge.name")
    if named:
        return str(named)
    if not podman():
        return f"br-{str(attrs.get('Id') or '')[:12]}"  # Docker's name for a user network
    # Podman's Docker API does not show the bridge; its own API does.
    url = f"{client.api.base_url}/v4.0.0/libpod/networks/{urllib.parse.quote(network)}/json"
    try:
        resp = client.api.get(url, timeout=call_timeout)
        resp.raise_for_status()
        name = resp.json().get("network_interface")
    except Exception as e:  # noqa: BLE001 (any failure means the bridge is unknown: refuse)
        raise UnavailableError(f"cannot find the bridge of network {network}: {e}",
                               advice=ENGINE_ADVICE) from None
    if not isinstance(name, str) or not name:
        raise UnavailableError(f"the engine reports no bridge for network {network}",
                               advice=_ISOLATION_ADVICE)
    return name

def confirm_isolation(client: docker.DockerClient, network: str, attrs: dict[str, Any], *,
                      podman: Callable[[], bool], call_timeout: float) -> None:
    """Refuse unless this machine's kernel isolates the plugins on ``network``.

    The engine must be local and run in this process's network namespace (the firewall read
    here is then the one its bridges pass through); bridge netfilter must pass bridged IPv4
    and IPv6 to the inet hooks; the network must have exactly one IPv4 subnet; and the tables
    scripts/podman.sh loads for it must hold exactly its rules (see :func:`_firewall_problems`).
    """
    def refuse(why: str, advice: str = _ISOLATION_ADVICE) -> UnavailableError:
        return UnavailableError(f"cannot confirm that plugins on network {network} are isolated "
                                f"from each other and from the host: {why}", advice=advice)

    if not engine_is_local(client):
        raise refuse("the container engine is not on this machine, so its firewall cannot be read")
    elsewhere = _engine_namespace_problem(client, call_timeout=call_timeout)
    if elsewhere:
        raise refuse(elsewhere, _NAMESPACE_ADVICE)
    subnets = [str(c.get("Subnet") or "") for c in (attrs.get("IPAM") or {}).get("Config") or []
               if isinstance(c, dict)]
    try:
        nets = [ipaddress.ip_network(n) for n in subnets]
    except ValueError:
        raise refuse(f"it has an unreadable subnet among {subnets}") from None
    if len(nets) != 1 or not isinstance(nets[0], ipaddress.IPv4Network):
        raise refuse(f"a sandbox network has exactly one IPv4 subnet, this one has {subnets}")
    for name in _BRIDGE_NETFILTER:
        try:
            value = Path("/proc/sys/net/bridge", name).read_text().strip()
        except OSError:
            raise refuse("bridge netfilter is not loaded (no /proc/sys/net/bridge)") from None
        if value != "1":
            raise refuse(f"net.bridge.{name} is {value}, not 1")
    bridge = _bridge_of(client, network, attrs, podman=podman, call_timeout=call_timeout)
    table = f"cortex_net_{network}"
    problems = _firewall_problems(bridge=_nft_table("bridge", table, refuse),
                                  inet=_nft_table("inet", table, refuse),
                                  bridge_name=bridge, subnet=nets[0])
    if problems:
        raise refuse("; ".join(problems))

def _engine_namespace_problem(client: docker.DockerClient, *, call_timeout: float) -> str:
    """Why the engine cannot be shown to run in this thread's network namespace (``""``: it
    does). The engine is the process listening on the unix socket (``SO_PEERCRED``); its
    bridges live in its network namespace, so a firewall read in another one covers none."""
    adapter = client.api.get_adapter(client.api.base_url)
    path = getattr(adapter, "socket_path", None)
    if not isinstance(path, str) or not path:
        return "the container engine's socket is unknown, so its network namespace cannot be read"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(call_timeout)
            sock.connect(path)
            pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                           struct.calcsize("3i")))
        if pid <= 0:
            return "the container engine runs in another PID namespace, so its network namespace cannot be read"
        engine, ours = os.stat(f"/proc/{pid}/ns/net"), os.stat("/proc/thread-self/ns/net")
    except OSError as e:
        return f"the container engine's network namespace cannot be read ({e.strerror or e})"
    if (engine.st_dev, engine.st_ino) != (ours.st_dev, ours.st_ino):
        return (f"the container engine (process {pid}) runs in another network namespace than "
                "this process, so the firewall read here does not cover its bridges")
    return ""


def process_problem(container: Container, *, local: bool, no_new_privileges: bool) -> str:
    """What is wrong with the started container's first process as this machine's kernel
    shows it (``""``: runs under a seccomp filter, without new privileges when decided, and
    without any IPv6 address). A process that cannot be inspected is a problem too."""
    state = container.attrs.get("State") or {}
    pid = state.get("Pid")
    if not state.get("Running") or not isinstance(pid, int) or pid <= 0:
        return ""  # it already exited: waiting for it to listen reports that, with its logs
    if not local:
        return "runs on an engine on another machine, so its seccomp filter cannot be confirmed"
    proc = Path("/proc", str(pid))
    try:
        cgroup = (proc / "cgroup").read_text()
        status = (proc / "status").read_text()
        ipv6 = (proc / "net" / "if_inet6").read_text() if Path("/proc/net/if_inet6").exists() else ""
    except OSError as e:
        return f"cannot be inspected ({e.strerror})"
    if str(container.id) not in cgroup:
        return f"is not process {pid} of this machine (another PID namespace?)"
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("Seccomp", "").strip() != "2":
        return "runs without a seccomp filter"
    if no_new_privileges and fields.get("NoNewPrivs", "").strip() != "1":
        return "may gain privileges (no_new_privs is not set)"
    if ipv6.strip():
        return "has IPv6 addresses although IPv6 was to be disabled"
    return ""


def missing_hardening(attrs: dict[str, Any], *, seccomp: str, no_new_privileges: bool) -> str:
    """What of the plugin hardening the container's configuration lacks (``""``: nothing)."""
    options = [str(o) for o in (attrs.get("HostConfig") or {}).get("SecurityOpt") or []]
    if seccomp not in options:
        return "the plugin seccomp profile"
    if no_new_privileges and not {"no-new-privileges", "no-new-privileges:true",
                                  "no-new-privileges=true"} & set(options):
        return "no-new-privileges"
    return ""


def _nft_table(family: str, name: str, refuse: Callable[[str], UnavailableError]) -> list[dict[str, Any]]:
    """The objects of nft table ``family name`` (``nft -j list table``); ``refuse(why)`` builds
    the error raised when it cannot be read."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    nft = shutil.which("nft", path=path)
    if nft is None:
        raise refuse("nft is not installed (apt-get install nftables)")
    try:
        proc = subprocess.run([nft, "-j", "list", "table", family, name], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise refuse(f"nft failed: {e}") from None
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise refuse(f"table {family} {name} cannot be read ({why}; it is loaded by "
                     "scripts/podman.sh and read as root)")
    try:
        objects = json.loads(proc.stdout).get("nftables")
    except (ValueError, AttributeError):
        raise refuse(f"nft listed table {family} {name} in a form this version cannot read") from None
    if not isinstance(objects, list):
        raise refuse(f"nft listed table {family} {name} in a form this version cannot read")
    return [o for o in objects if isinstance(o, dict)]


def _firewall_problems(*, bridge: list[dict[str, Any]], inet: list[dict[str, Any]], bridge_name: str,
                       subnet: ipaddress.IPv4Network) -> list[str]:
    """What differs between the listed sandbox tables and what scripts/podman.sh loads for a
    network on ``bridge_name`` with ``subnet`` (``[]``: they match). Each checked chain must be a
    filter base chain on its hook holding exactly the expected rules (counters aside); the bridge
    chain must sort before bridge netfilter."""
    net = str(subnet)
    iif, oif = f"meta iifname={bridge_name}", f"meta oifname={bridge_name}"
    expected: list[tuple[str, list[dict[str, Any]], str, list[tuple[str, ...]]]] = [
        ("bridge", bridge, "forward", [(f"ip saddr={net}", "drop"), (f"ip daddr={net}", "drop"),
                                       (f"arp saddr ip={net}", "drop"), (f"arp daddr ip={net}", "drop")]),
        ("inet", inet, "input", [(iif, "ct state=established,related", "accept"),
                                 (iif, "meta l4proto=tcp", "reject"), (iif, "reject")]),
        ("inet", inet, "forward", [(iif, "drop"), (oif, "drop")]),
    ]
    problems = []
    for family, objects, chain, rules in expected:
        base = [o["chain"] for o in objects if isinstance(o.get("chain"), dict)
                and o["chain"].get("name") == chain]
        if len(base) != 1 or base[0].get("hook") != chain or base[0].get("type") != "filter":
            problems.append(f"{family} chain {chain} is not a filter chain on the {chain} hook")
            continue
        prio = base[0].get("prio")
        if family == "bridge" and (not isinstance(prio, int) or prio >= _BRIDGE_NETFILTER_PRIORITY):
            problems.append(f"bridge chain {chain} has priority {prio}, which bridge netfilter can skip; "
                            f"it must be below {_BRIDGE_NETFILTER_PRIORITY}")
        live = [_canonical_rule(o["rule"].get("expr")) for o in objects if isinstance(o.get("rule"), dict)
                and o["rule"].get("chain") == chain]
        if live != rules:
            problems.append(f"{family} chain {chain} holds {live}, not {rules}")
    return problems


def _canonical_rule(exprs: Any) -> tuple[str, ...]:
    """A rule's statements as short text (``ip saddr=10.0.0.0/24``, ``drop``; every reject is
    ``reject``); a statement of another kind is kept as its JSON, so it never matches."""
    out: list[str] = []
    for expr in exprs if isinstance(exprs, list) else [exprs]:
        kind, body = next(iter(expr.items())) if isinstance(expr, dict) and len(expr) == 1 else ("", expr)
        if kind == "counter":
            continue
        if kind in ("accept", "drop", "reject"):
            out.append(kind)
        elif kind == "match" and isinstance(body, dict) and body.get("op") in ("==", "in"):
            out.append(f"{_canonical_operand(body.get('left'))}={_canonical_operand(body.get('right'))}")
        else:
            out.append(json.dumps(expr, sort_keys=True))
    return tuple(out)


def _canonical_operand(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        kind, body = next(iter(value.items()))
        if kind == "payload" and isinstance(body, dict):
            return f"{body.get('protocol')} {body.get('field')}"
        if kind in ("meta", "ct") and isinstance(body, dict):
            return f"{kind} {body.get('key')}"
        if kind == "prefix" and isinstance(body, dict):
            return f"{body.get('addr')}/{body.get('len')}"
        if kind == "set":
            return _canonical_operand(body)
    if isinstance(value, list):
        return ",".join(sorted(_canonical_operand(v) for v in value))
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, sort_keys=True)
