#!/bin/sh
# Installs every Debian 12 package the build, the tests and the demo need.
# Idempotent: it does nothing when everything is already there, so `make check`
# and `make demo` can call it on every run.
set -eu
PKGS="build-essential pkg-config libpq-dev libical-dev libcurl4-openssl-dev
libxml2-dev libxml2-utils libevent-dev liblmdb-dev lmdb-utils libinih-dev libcmocka-dev
libjansson-dev libssl-dev
unicode-cldr-core tzdata postgresql postgresql-client python3 python3-exchangelib
python3-icalendar python3-psycopg2
clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
