#!/usr/bin/env bash
# Start (idempotently) the real container parts cortex-trust runs and tests against:
#   * Podman serving the Docker API on a unix socket in .state/podman/ (runc, cgroupfs and the
#     project's own scripts/containers.conf; /etc/containers is never edited),
#   * the sandbox network: an internal Podman network (no route out) whose host side is firewalled
#     so a plugin cannot open connections to the host either (see "why the firewall" below),
#   * Debian's docker-registry on 127.0.0.1:<port>, storage in .state/registry/.
# Installs podman, runc, docker-registry and busybox-static with apt if they are missing.
#
# Usage:
#   eval "$(scripts/podman.sh)"      start what is not running; print `export NAME=value` lines
#   scripts/podman.sh stop           stop the service and the registry (images and data stay)
#   scripts/podman.sh status         exit 0 if both answer
#   scripts/podman.sh firewall NETWORK BRIDGE SUBNET
#                                    load the sandbox firewall of one network into the current
#                                    network namespace (what `start` does for its network)
#
# CORTEX_SANDBOX_NETWORK and CORTEX_SANDBOX_SUBNET (gateway: CORTEX_SANDBOX_GATEWAY, else the
# subnet's first address) name another sandbox network; each network gets its own firewall tables.
# Output on stdout is only the export lines; progress and errors go to stderr.
#
# Why the firewall: an internal network has no default route, but the host owns the bridge's
# gateway address, so a container could still connect to any host service listening on 0.0.0.0
# or on that gateway, and every plugin shares the bridge with every other plugin. The host calls
# the plugin; the plugin never calls anyone. Two nft tables named cortex_net_<network> say so:
#   * table bridge: no IPv4 or ARP frame with a sandbox address passes between two ports of a
#     bridge, so a plugin can neither reach nor even discover (ARP) another plugin. Its hook runs
#     at priority filter (-200), before bridge netfilter (0): at equal priority a hook registered
#     later runs first, and bridge netfilter registers when the first bridge appears (the first
#     plugin start on a fresh machine, after this table) and then skips every other priority-0
#     hook for IPv4, IPv6 and ARP, so a priority-0 table would not hold on a first run. The bridge
#     family cannot match the bridge by name here (no meta ibrname), so these rules match the
#     subnet;
#   * table inet: input from the bridge is accepted only as a reply to a connection the host
#     opened (IPv4 and IPv6); nothing is forwarded from or to the bridge, which with bridge
#     netfilter on (it is turned on here, as Docker does) also drops every IPv4 and IPv6 packet
#     bridged between two plugins, by the bridge's name, and anything another network would
#     route to a plugin.
# Plugins also run with IPv6 disabled and a seccomp profile (cortex_trust/runtime/_containers.py), so they
# send no IPv6 at all and cannot gain the capabilities to craft frames of any other kind.
# `cortex plugin run` refuses to start a plugin unless it finds these tables and sysctls.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CORTEX_STATE_DIR:-$ROOT/.state}
PODMAN_DIR=$STATE/podman
SOCK=$PODMAN_DIR/podman.sock
REG_DIR=$STATE/registry
NET=${CORTEX_SANDBOX_NETWORK:-cortex-sandbox}
SUBNET=${CORTEX_SANDBOX_SUBNET:-10.89.210.0/24}
GATEWAY=${CORTEX_SANDBOX_GATEWAY:-}
export CONTAINERS_CONF=$ROOT/scripts/containers.conf
export CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf

log() { echo "podman.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v nft >/dev/null || missing+=(nftables)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    log "installing ${missing[*]}"
    # Other jobs may use apt at the same time: wait for the lock instead of failing.
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
  fi
  # busybox-static is what the test image copies; the dynamic busybox (same path, package
  # `busybox`) would not run FROM scratch.
  if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    [ "$(id -u)" = 0 ] || die "busybox-static is missing; apt-get install busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 busybox-static >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_free() {
  # SO_REUSEADDR like the registry itself, so a TIME_WAIT from our own last run does not count.
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null
}

registry_port() {
  if [ -f "$REG_DIR/port" ]; then cat "$REG_DIR/port"; else
    mkdir -p "$REG_DIR"; free_port > "$REG_DIR/port"; cat "$REG_DIR/port"; fi
}

write_registries_conf() {
  # The test registry speaks plain HTTP on loopback; only that one host:port is marked insecure.
  local port=$1 want
  want=$(printf 'unqualified-search-registries = []\n\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port")
  if [ ! -f "$CONTAINERS_REGISTRIES_CONF" ] || [ "$(cat "$CONTAINERS_REGISTRIES_CONF")" != "$want" ]; then
    printf '%s\n' "$want" > "$CONTAINERS_REGISTRIES_CONF"
    return 0   # changed
  fi
  return 1
}

podman_answers() { curl -fsS --max-time 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

start_podman() {
  mkdir -p "$PODMAN_DIR"
  local changed=0
  write_registries_conf "$(registry_port)" && changed=1
  if alive "$PODMAN_DIR/pid" && podman_answers && [ $changed = 0 ]; then return; fi
  if alive "$PODMAN_DIR/pid"; then kill "$(cat "$PODMAN_DIR/pid")"; sleep 0.5; fi
  rm -f "$SOCK"
  log "starting the Podman API service on $SOCK"
  setsid podman system service --time=0 "unix://$SOCK" \
    >>"$PODMAN_DIR/service.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$PODMAN_DIR/pid"
  for _ in $(seq 1 100); do podman_answers && return; sleep 0.1; done
  die "the Podman service did not answer on $SOCK; see $PODMAN_DIR/service.log"
}

ensure_network() {
  if ! podman network exists "$NET"; then
    [ -n "$GATEWAY" ] || GATEWAY=$(python3 -c 'import ipaddress,sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))' "$SUBNET") \
      || die "not an IPv4 subnet: $SUBNET"
    log "creating the internal network $NET ($SUBNET)"
    # --internal: no route out. --disable-dns: no resolver listening on the gateway.
    # An explicit --gateway: with --subnet alone Podman 4.3 gives the bridge no host address,
    # and then the host cannot reach the plugin either.
    podman network create --internal --disable-dns --subnet "$SUBNET" --gateway "$GATEWAY" \
      "$NET" >/dev/null
  fi
  [ "$(podman network inspect --format '{{.Internal}}' "$NET")" = true ] \
    || die "network $NET exists but is not internal; remove it (podman network rm $NET)"
  # Podman 4.3 cannot name the bridge; it is fixed once the network exists, so read it back.
  IFACE=$(podman network inspect --format '{{.NetworkInterface}}' "$NET")
  [ -n "$IFACE" ] || die "cannot find the bridge of network $NET"
  SUBNET=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$NET" | awk '{print $1}')
  GATEWAY=$(podman network inspect --format '{{range .Subnets}}{{.Gateway}} {{end}}' "$NET" | awk '{print $1}')
  [ -n "$GATEWAY" ] && [ "$GATEWAY" != "<nil>" ] \
    || die "network $NET has no gateway, so the host cannot reach plugins; podman network rm $NET and rerun"
  ensure_firewall
}

ensure_firewall() {
  apply_firewall "$NET" "$IFACE" "$SUBNET"
  drop_legacy_firewall
}

apply_firewall() {  # network bridge subnet: in the current network namespace
  local net=$1 iface=$2 subnet=$3 table=cortex_net_$1 f
  [[ $net =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$ ]] || die "not a network name: $net"
  [[ $iface =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$ ]] || die "not an interface name: $iface"
  [[ $subnet =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || die "not an IPv4 subnet: $subnet"
  command -v nft >/dev/null || die "nft is missing; without it the sandbox network is not closed (apt-get install nftables)"
  # Bridged IPv4 and IPv6 reach the inet table only through bridge netfilter.
  [ -e /proc/sys/net/bridge/bridge-nf-call-ip6tables ] || modprobe br_netfilter 2>/dev/null || true
  for f in bridge-nf-call-iptables bridge-nf-call-ip6tables; do
    [ -e "/proc/sys/net/bridge/$f" ] \
      || die "bridge netfilter is not available (modprobe br_netfilter); plugins on $net could reach each other"
    [ "$(cat "/proc/sys/net/bridge/$f")" = 1 ] || echo 1 > "/proc/sys/net/bridge/$f"
  done
  # One transaction: the old tables go and the new ones come at once, never a moment without.
  nft -f - <<EOF
table bridge $table
delete table bridge $table
table inet $table
delete table inet $table
table bridge $table {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr $subnet drop
    ip daddr $subnet drop
    arp saddr ip $subnet drop
    arp daddr ip $subnet drop
  }
}
table inet $table {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$iface" ct state established,related accept
    iifname "$iface" meta l4proto tcp reject with tcp reset
    iifname "$iface" reject
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "$iface" drop
    oifname "$iface" drop
  }
}
EOF
}

drop_legacy_firewall() {
  # Earlier versions of this script: iptables chains and a priority-0 bridge table.
  local ipt
  nft delete table bridge cortex_sandbox 2>/dev/null || true
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    while $ipt -D INPUT -i "$IFACE" -j CORTEX-SANDBOX 2>/dev/null; do :; done
    $ipt -F CORTEX-SANDBOX 2>/dev/null && $ipt -X CORTEX-SANDBOX 2>/dev/null || true
  done
}

registry_answers() { curl -fsS --max-time 3 "http://127.0.0.1:$1/v2/" >/dev/null 2>&1; }

start_registry() {
  local port; port=$(registry_port)
  mkdir -p "$REG_DIR/storage"
  if alive "$REG_DIR/pid" && registry_answers "$port"; then return; fi
  if alive "$REG_DIR/pid"; then kill "$(cat "$REG_DIR/pid")"; sleep 0.3; fi
  if ! port_free "$port"; then
    # Something else took our port since last time: move (start_podman then rewrites
    # registries.conf and restarts the service for the new port).
    free_port > "$REG_DIR/port"; port=$(cat "$REG_DIR/port")
  fi
  sed -e "s|@ROOTDIR@|$REG_DIR/storage|" -e "s|@ADDR@|127.0.0.1:$port|" \
    "$ROOT/scripts/registry.yml.template" > "$REG_DIR/config.yml"
  log "starting docker-registry on 127.0.0.1:$port"
  setsid docker-registry serve "$REG_DIR/config.yml" >>"$REG_DIR/registry.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$REG_DIR/pid"
  for _ in $(seq 1 100); do registry_answers "$port" && return; sleep 0.1; done
  die "docker-registry did not answer on 127.0.0.1:$port; see $REG_DIR/registry.log"
}

stop_all() {
  local f
  for f in "$PODMAN_DIR/pid" "$REG_DIR/pid"; do
    if alive "$f"; then kill "$(cat "$f")"; log "stopped $(cat "$f")"; fi
    rm -f "$f"
  done
  rm -f "$SOCK"
}

case "${1:-start}" in
  start)
    ensure_packages
    mkdir -p "$STATE"
    # Several test runs or helpers may call this at once: one starter at a time.
    exec 9>"$STATE/.podman.sh.lock"
    flock 9
    start_registry
    start_podman
    ensure_network
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
    echo "export CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF"
    echo "export CORTEX_SANDBOX_NETWORK=$NET"
    echo "export CORTEX_TEST_OCI_REGISTRY=127.0.0.1:$(registry_port)"
    ;;
  stop)
    mkdir -p "$STATE"; exec 9>"$STATE/.podman.sh.lock"; flock 9
    stop_all ;;
  status) podman_answers && registry_answers "$(registry_port)" ;;
  firewall)
    [ $# = 4 ] || { echo "usage: scripts/podman.sh firewall NETWORK BRIDGE SUBNET" >&2; exit 2; }
    apply_firewall "$2" "$3" "$4" ;;
  *) echo "usage: scripts/podman.sh [start|stop|status|firewall NETWORK BRIDGE SUBNET]" >&2; exit 2 ;;
esac
