#!/usr/bin/env bash
# Installs what the test suites need when it is missing: PostgreSQL's server binaries (initdb, postgres) and
# Debian's Chromium for the dashboard's browser tests. Idempotent; `make test` and `make run` call it.
set -o errexit -o nounset -o pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1
}

have_chromium() {
  command -v chromium >/dev/null 2>&1
}

missing=()
have_postgres || missing+=(postgresql)
have_chromium || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "prerequisites: PostgreSQL and Chromium are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "prerequisites: missing ${missing[*]}; run as root or install them: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "prerequisites: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d stops the package scripts from starting a system-wide cluster: the tests and `make run`
# start their own PostgreSQL into a folder of their own.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=true
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if $created_policy; then rm -f "$policy"; fi

have_postgres || { echo "prerequisites: PostgreSQL still not found after install" >&2; exit 1; }
have_chromium || { echo "prerequisites: chromium still not found after install" >&2; exit 1; }
echo "prerequisites: installed ${missing[*]}"
