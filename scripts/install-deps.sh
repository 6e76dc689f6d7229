#!/bin/sh
# Installs the Debian packages fleetsim builds against, only those missing.
# As root it runs apt-get; otherwise sudo if there is one; otherwise it prints
# the exact line to run and fails.
set -eu
# libxml2-utils (xmllint) and chromium are for the report tests: SVG parsed as XML,
# pages rendered in a headless browser.
PKGS="build-essential cmake pkg-config libsimgrid-dev libgsl-dev libyaml-dev libcjson-dev libcunit1-dev libre2-dev libxml2-utils chromium nginx prometheus jq"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing" >&2
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-deps: not root and no sudo; run as root:" >&2
  echo "  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
