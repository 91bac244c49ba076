#!/usr/bin/env bash
# Installs what the test suites need when it is missing: PostgreSQL's server binaries (initdb, postgres) and
# Debian's Chromium for the dashboard's browser tests. Idempotent; `make test` and `make run` call it.
#
#   hack/install-prereqs.sh        what the tests need: PostgreSQL and Chromium
#   hack/install-prereqs.sh --run  what `make run` needs: PostgreSQL (its server and psql) and curl, no Chromium
set -o errexit -o nounset -o pipefail

mode=test
case "${1:-}" in
  "") ;;
  --run) mode=run ;;
  *) echo "usage: $0 [--run]" >&2; exit 2 ;;
esac

have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1
}

have_chromium() {
  command -v chromium >/dev/null 2>&1
}

have_curl() {
  command -v curl >/dev/null 2>&1
}

missing=()
have_postgres || missing+=(postgresql)
if [ "$mode" = run ]; then
  have_curl || missing+=(curl)
else
  have_chromium || missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  if [ "$mode" = run ]; then
    echo "prerequisites: PostgreSQL and curl are installed"
  else
    echo "prerequisites: PostgreSQL and Chromium are installed"
  fi
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
if [ "$mode" = run ]; then
  have_curl || { echo "prerequisites: curl still not found after install" >&2; exit 1; }
else
  have_chromium || { echo "prerequisites: chromium still not found after install" >&2; exit 1; }
fi
echo "prerequisites: installed ${missing[*]}"
