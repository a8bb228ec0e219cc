#!/usr/bin/env bash
# Install the Debian packages pulumi-state builds, runs and tests with (idempotent; needs root).
set -euo pipefail
pkgs=(autoconf automake libtool pkg-config make gcc libfcgi-dev libpq-dev libjansson-dev libssl-dev
      zlib1g-dev uuid-dev check clang-format git lighttpd postgresql postgresql-contrib python3 python3-pytest spawn-fcgi procps apache2 pgbouncer)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The distribution's own cluster is not used (the tests start throwaway ones); leave it alone.
