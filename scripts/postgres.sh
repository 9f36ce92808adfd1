#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the registry tests and print its URL.
#
#   url=$(scripts/postgres.sh)            # installs postgresql via apt if missing, starts it
#   CORTEX_TEST_PG_URL=$url .venv/bin/pytest tests/registry
#   scripts/postgres.sh stop DIR          # stop a server (DIR is printed on stderr)
#
# The server runs as user postgres from a temp directory, trusts local connections, listens
# only on 127.0.0.1 (and a socket in its own directory) on a free port. Nothing outside the
# temp directory is touched. Output: the URL on stdout; the data directory on stderr.
set -euo pipefail

if [ "${1:-}" = "stop" ]; then
  dir=${2:?usage: postgres.sh stop DIR}
  bin=$(cat "$dir/bindir")
  su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >&2
  rm -rf "$dir"
  exit 0
fi

find_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

if ! bindir=$(find_bindir); then
  echo "installing postgresql with apt..." >&2
  if [ "$(id -u)" != 0 ]; then echo "error: need root to apt-get install postgresql" >&2; exit 3; fi
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 postgresql >&2
  bindir=$(find_bindir)
fi
id postgres >/dev/null 2>&1 || { echo "error: no postgres user after install" >&2; exit 3; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
dir=$(mktemp -d /tmp/cortex-pg.XXXXXX)
chown postgres "$dir"
echo "$bindir" > "$dir/bindir"
su postgres -s /bin/sh -c "'$bindir/initdb' -D '$dir/data' -A trust -U postgres -E UTF8 >'$dir/initdb.log' 2>&1"
su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -o \"-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start" >&2
su postgres -s /bin/sh -c "'$bindir/createdb' -h 127.0.0.1 -p $port -U postgres cortex"
echo "postgres data directory: $dir (stop: scripts/postgres.sh stop $dir)" >&2
echo "postgresql://postgres@127.0.0.1:$port/cortex"
