#!/usr/bin/env bash
# Serve a directory with Debian's nginx on loopback: the static server (what a mirror or a CDN
# is) the signed index's tests and benchmarks read through.
#
#   url=$(scripts/nginx.sh DIR)      start nginx serving DIR on 127.0.0.1:<free port> unless it
#                                    already does; print its base URL (http://127.0.0.1:PORT)
#   scripts/nginx.sh stop DIR        stop the instance serving DIR (its state directory goes too)
#   scripts/nginx.sh status DIR      exit 0 if the instance serving DIR answers
#
# Installs nginx with apt if it is missing. Each instance is nginx's own master process with the
# project's configuration (no system service, nothing under /etc is read or changed): one worker
# (NGINX_WORKERS to change it), no access log, keep-alive connections not closed after 1,000
# requests (a load generator keeps its connections), listening on 127.0.0.1 only.
# NGINX_FILE_CACHE=1 (for benchmarks, as a CDN-facing server would run) caches open files for a
# minute, except timestamp.json: the only file of a signed index rewritten in place, the others
# are immutable. Without it (the tests) a file replaced on disk is served at once. Its configuration,
# pid, port and error log live in $CORTEX_STATE_DIR/nginx/<hash of DIR>/ (default .state/).
# Started as root, nginx runs its workers as nobody: DIR and its parents must then be readable
# and searchable by everyone (the script checks). Output on stdout is only the URL; progress and
# errors go to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CORTEX_STATE_DIR:-$ROOT/.state}
WORKERS=${NGINX_WORKERS:-1}

log() { echo "nginx.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { echo "usage: scripts/nginx.sh DIR | stop DIR | status DIR" >&2; exit 2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nginx_bin() {
  if command -v nginx >/dev/null; then command -v nginx; elif [ -x /usr/sbin/nginx ]; then echo /usr/sbin/nginx
  else return 1; fi
}

ensure_nginx() {
  nginx_bin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "nginx is missing; install it (apt-get install nginx) or run as root"
  log "installing nginx"
  # Other jobs may use apt at the same time: wait for the lock instead of failing.
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 nginx >&2
  nginx_bin >/dev/null || die "no nginx after installing it"
}

instance_dir() {  # the state directory of the instance serving $1 (an absolute path)
  echo "$STATE/nginx/$(printf '%s' "$1" | sha256sum | cut -c1-16)"
}

write_conf() {  # DIR WWW PORT EXTRA
  cat >"$1/nginx.conf" <<EOF
daemon on; worker_processes $WORKERS; pid $1/nginx.pid; error_log $1/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $1/body; proxy_temp_path $1/proxy;
       fastcgi_temp_path $1/fcgi; uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
       types { application/json json; text/html html; }
       $4
       server { listen 127.0.0.1:$3; root $2;
                location ~ /timestamp\.json\$ { open_file_cache off; } } }
EOF
}

start() {
  local www=$1 dir port bin tries extra=""
  if [ "${NGINX_FILE_CACHE:-0}" = 1 ]; then
    extra="open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;"
  fi
  [ -d "$www" ] || die "$www is not a directory"
  www=$(cd "$www" && pwd -P)
  dir=$(instance_dir "$www")
  if alive "$dir/nginx.pid" && [ -f "$dir/port" ] && answers "$(cat "$dir/port")"; then
    echo "http://127.0.0.1:$(cat "$dir/port")"
    return
  fi
  ensure_nginx
  bin=$(nginx_bin)
  if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -r "$www" -a -x "$www"; then
    die "$www must be readable by nobody (nginx's workers): chmod a+rx it and its parents"
  fi
  if alive "$dir/nginx.pid"; then kill "$(cat "$dir/nginx.pid")"; sleep 0.2; fi
  mkdir -p "$dir"
  for tries in 1 2 3 4 5; do
    port=$(free_port)
    write_conf "$dir" "$www" "$port" "$extra"
    # Another process may take the port between free_port and nginx's bind: try another one.
    if "$bin" -c "$dir/nginx.conf" -p "$dir" </dev/null >>"$dir/error.log" 2>&1; then
      for _ in $(seq 50); do answers "$port" && break; sleep 0.1; done
      answers "$port" || die "nginx started but does not answer on port $port (see $dir/error.log)"
      echo "$port" >"$dir/port"
      echo "$www" >"$dir/root"
      log "serving $www at http://127.0.0.1:$port (stop: scripts/nginx.sh stop $www)"
      echo "http://127.0.0.1:$port"
      return
    fi
    log "attempt $tries failed to start nginx on port $port"
  done
  tail -n 20 "$dir/error.log" >&2 || true
  die "could not start nginx (see $dir/error.log)"
}

stop() {
  local www dir pid
  www=$(cd "$1" 2>/dev/null && pwd -P) || www=$1
  dir=$(instance_dir "$www")
  if alive "$dir/nginx.pid"; then
    pid=$(cat "$dir/nginx.pid")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}

status() {
  local www dir
  www=$(cd "$1" && pwd -P)
  dir=$(instance_dir "$www")
  alive "$dir/nginx.pid" && [ -f "$dir/port" ] && answers "$(cat "$dir/port")"
}

case "${1:-}" in
  "" | -h | --help) usage ;;
  stop) [ $# = 2 ] || usage; stop "$2" ;;
  status) [ $# = 2 ] || usage; status "$2" ;;
  *) [ $# = 1 ] || usage; start "$1" ;;
esac
