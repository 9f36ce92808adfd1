#!/usr/bin/env bash
# Make sure Debian's Chromium is installed (the browser the web catalogue's tests drive through
# Playwright; Playwright's own browser download is not used) and print its path.
#
#   chromium=$(scripts/chromium.sh)     # installs the `chromium` package with apt if missing
set -euo pipefail

bin=/usr/bin/chromium
if [ ! -x "$bin" ]; then
  echo "installing chromium with apt..." >&2
  if [ "$(id -u)" != 0 ]; then echo "error: need root to apt-get install chromium" >&2; exit 3; fi
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 chromium >&2
fi
[ -x "$bin" ] || { echo "error: no $bin after installing chromium" >&2; exit 3; }
echo "$bin"
