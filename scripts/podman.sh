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
#
# Output on stdout is only the export lines; progress and errors go to stderr.
#
# Why the firewall: an internal network has no default route, but the host owns the bridge's
# gateway address, so a container could still connect to any host service listening on 0.0.0.0
# or on that gateway. The CORTEX-SANDBOX chains accept only replies on the sandbox bridge (the
# host calls the plugin; the plugin never calls anyone): INPUT from the bridge is dropped unless
# it belongs to a connection the host opened, for IPv4 and IPv6, and IPv4 frames between two
# plugins on the sandbox subnet are dropped (nft bridge table), so plugins cannot call each other.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CORTEX_STATE_DIR:-$ROOT/.state}
PODMAN_DIR=$STATE/podman
SOCK=$PODMAN_DIR/podman.sock
REG_DIR=$STATE/registry
NET=${CORTEX_SANDBOX_NETWORK:-cortex-sandbox}
SUBNET=${CORTEX_SANDBOX_SUBNET:-10.89.210.0/24}
GATEWAY=${CORTEX_SANDBOX_GATEWAY:-10.89.210.1}
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
  local ipt
  local tools=(iptables)
  # Without IPv6 in the kernel there is no IPv6 path to close (nor any ip6tables to do it with).
  [ -e /proc/net/if_inet6 ] && tools+=(ip6tables)
  for ipt in "${tools[@]}"; do
    command -v "$ipt" >/dev/null || die "$ipt is missing; without it the sandbox network is not closed"
    $ipt -N CORTEX-SANDBOX 2>/dev/null || true
    $ipt -F CORTEX-SANDBOX
    $ipt -A CORTEX-SANDBOX -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    # REJECT, not DROP: the plugin learns at once that it may not connect (no hanging timeouts).
    $ipt -A CORTEX-SANDBOX -p tcp -j REJECT --reject-with tcp-reset
    $ipt -A CORTEX-SANDBOX -j REJECT
    $ipt -C INPUT -i "$IFACE" -j CORTEX-SANDBOX 2>/dev/null || $ipt -I INPUT 1 -i "$IFACE" -j CORTEX-SANDBOX
  done
  # Plugins on the same bridge must not call each other. This kernel's nft cannot match the
  # bridge by name (meta ibrname), so match the sandbox subnet on both ends instead.
  if command -v nft >/dev/null; then
    nft -f - <<EOF
table bridge cortex_sandbox
delete table bridge cortex_sandbox
table bridge cortex_sandbox {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr $SUBNET ip daddr $SUBNET drop
  }
}
EOF
  else
    log "warning: nft missing; plugins on $NET could reach each other"
  fi
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
  *) echo "usage: scripts/podman.sh [start|stop|status]" >&2; exit 2 ;;
esac
