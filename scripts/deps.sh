#!/bin/sh
# Install the Debian packages the build, the tests and `make run` need; silent and quick
# when everything is already there.
set -e
PKGS="make gcc pkg-config libh2o-evloop-dev libhiredis-dev libssl-dev libmagic-dev
libcjson-dev libyaml-dev libcmocka-dev redis-server curl python3 nghttp2-client
nginx-light wrk clang python3-yaml valgrind"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node and npm run the OpenAPI linter. They may come from elsewhere (NodeSource's nodejs
# bundles npm and conflicts with Debian's npm package): the commands count, not the names.
command -v node >/dev/null && command -v npm >/dev/null || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
