#!/usr/bin/env bash
# Prints the path of the headless browser the UI's browser tests
# (e2e/browser) drive, installing it first when it is missing:
#   - $STEPFLOW_CHROMIUM, when set, must be an executable; nothing else is
#     tried;
#   - otherwise Debian's chromium package, /usr/bin/chromium, installed with
#     apt-get (as root, or through sudo when not root and sudo exists) the
#     first time. Running it again does nothing.
set -euo pipefail

if [ -n "${STEPFLOW_CHROMIUM:-}" ]; then
  if [ ! -x "$STEPFLOW_CHROMIUM" ]; then
    echo "chromium: STEPFLOW_CHROMIUM=$STEPFLOW_CHROMIUM is not an executable" >&2
    exit 1
  fi
  echo "$STEPFLOW_CHROMIUM"
  exit 0
fi

browser=/usr/bin/chromium
if [ -x "$browser" ]; then
  echo "$browser"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo -n)
else
  echo "chromium: $browser is missing, and installing Debian's chromium package needs root (or sudo)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium: $browser is missing and there is no apt-get to install Debian's chromium package; set STEPFLOW_CHROMIUM to a Chromium" >&2
  exit 1
fi
echo "chromium: installing Debian's chromium package (once)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
if [ ! -x "$browser" ]; then
  echo "chromium: apt-get installed chromium, but $browser is still missing" >&2
  exit 1
fi
echo "$browser"
