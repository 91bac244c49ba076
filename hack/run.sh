#!/usr/bin/env bash
# make run: the whole of flightdeck on one machine, with the Fly simulator instead of Fly.
#
# Brings up, in this order, and stops in reverse on Ctrl-C (SIGINT), SIGTERM or SIGHUP:
#   1. PostgreSQL: a cluster of its own in .data/postgres (initdb on first use, installed with apt by
#      hack/install-prereqs.sh --run when missing), database "flightdeck", listening on 127.0.0.1:$PG_PORT
#      only. As root it runs as the postgres user (PostgreSQL refuses root). With DATABASE_URL set, that
#      database is used instead and no PostgreSQL is started; point it only at a database meant for trying
#      flightdeck, since flightdeck manages every row in it against the simulator.
#   2. flightdeck sim on $SIM_ADDR, its machines' /status on a free port of their own 127.N.x.y addresses.
#   3. flightdeck migrate, then the demo deployments, inserted with SQL as the platform's API does:
#        demo-healthy   @modelcontextprotocol/server-everything  -> running
#        demo-invalid   @invalid/does-not-exist                  -> unhealthy ("failed to start")
#        demo-autostop  @modelcontextprotocol/server-memory      -> running, then stopped: $AUTOSTOP_AFTER seconds
#                       after it is running this script stops its machine as the Fly proxy does for an idle one
#   4. flightdeck run against both, console logs, dashboard and API on http://$HTTP_ADDR/; this script then
#      follows its log.
# Logs of this run: .data/run/{flightdeck,sim}.log; PostgreSQL's: .data/postgres/postgres.log.
#
# A second run reuses the cluster, the database and its rows. The simulator keeps its machines in memory, so
# the machines of an earlier run are gone: a demo deployment that had one is deleted and inserted again (so
# the demo plays again); a demo row without a machine is kept; other rows stay as they are, and flightdeck
# reports those that had a machine failed ("Machine no longer exists").
#
# Choices (each overridable from the environment or the make command line, e.g. make run HTTP_ADDR=127.0.0.1:9090):
#   HTTP_ADDR=127.0.0.1:8080  flightdeck's default; the script stops with a clear message when it is taken
#   SIM_ADDR=127.0.0.1:4280   the simulator's default API address
#   PG_PORT=54329             off PostgreSQL's usual 5432 so that a system cluster does not collide
#   SIM_BOOT=1s SIM_INSTALL=5s  a machine boots in a second and "npm install" takes 5s: slow enough to watch
#                             installing and starting on the dashboard, quick enough not to bore
#   CHECK_INTERVAL=10s        a third of the 30s default, so that a stop or a break shows within seconds; the
#                             other timings keep flightdeck's defaults (STARTUP_TIMEOUT 60s, PROBE_TIMEOUT 5s, ...)
#   AUTOSTOP_AFTER=60         seconds between demo-autostop running and its autostop
#   LOG_FORMAT=console        readable logs in the terminal
# FLY_API_BASE_URL, FLY_API_TOKEN, FLY_APP_NAME and PROBE_URL_TEMPLATE always point at the simulator, whatever
# the environment holds: make run never talks to Fly. Every other flightdeck variable passes through.
#
# Should this script be killed with SIGKILL, the processes it started run on (they live in sessions of their
# own so that Ctrl-C reaches only this script, which stops them in order): stop them with
# kill <pid> (pids in .data/run/pids) and pg_ctl -D .data/postgres/data stop.
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${FLIGHTDECK_BIN:-$root/bin/flightdeck}
data=$root/.data
run_dir=$data/run
pg_dir=$data/postgres
pg_data=$pg_dir/data

http_addr=${HTTP_ADDR:-127.0.0.1:8080}
sim_addr=${SIM_ADDR:-127.0.0.1:4280}
pg_port=${PG_PORT:-54329}
sim_boot=${SIM_BOOT:-1s}
sim_install=${SIM_INSTALL:-5s}
autostop_after=${AUTOSTOP_AFTER:-60}

say() { printf '\033[1mmake run:\033[0m %s\n' "$*"; }
die() {
  printf '\033[1;31mmake run: %s\033[0m\n' "$*" >&2
  exit 1
}

[ -x "$bin" ] || die "$bin not found: build it first (make build; make run does)"

# --- processes this script started, stopped in reverse order by cleanup ---------------------------------
sim_pid="" fd_pid="" tail_pid="" sleep_pid="" pg_started=false

# stop_process PID NAME: SIGTERM to the process's group, up to 40s for it to exit, then SIGKILL.
stop_process() {
  local pid=$1 name=$2 i code=0
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 400; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop within 40s: killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 143 ]; then
    say "$name exited with code $code"
  fi
}

cleanup() {
  trap - INT TERM HUP EXIT
  set +o errexit
  [ -n "$sleep_pid" ] && kill "$sleep_pid" 2>/dev/null
  stop_process "$fd_pid" "flightdeck run"
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null && wait "$tail_pid" 2>/dev/null
  stop_process "$sim_pid" "flightdeck sim"
  if $pg_started; then
    say "stopping PostgreSQL"
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null
  fi
  if [ -n "$sim_pid$fd_pid" ] || $pg_started; then
    rm -f "$run_dir/pids"
    say "stopped everything it started"
  fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP
trap cleanup EXIT

# --- checks ----------------------------------------------------------------------------------------------

# listening HOST:PORT: whether something accepts connections there (an empty host means loopback).
listening() {
  local host=${1%:*} port=${1##*:}
  [ -n "$host" ] || host=127.0.0.1
  [ "$host" = 0.0.0.0 ] && host=127.0.0.1
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# require_free NAME ADDR VARIABLE: stop with a clear message when ADDR is taken.
require_free() {
  local name=$1 addr=$2 var=$3 who=""
  if listening "$addr"; then
    if command -v ss >/dev/null 2>&1; then
      who=$(ss -Hltnp "sport = :${addr##*:}" 2>/dev/null | head -n 1 |
        sed -nE 's/.*users:\(\("([^"]+)",pid=([0-9]+).*/\1, pid \2/p' || true)
    fi
    die "$addr, where $name should listen, is already in use${who:+ (by $who)}: stop that program, or choose another address: make run $var=..."
  fi
}

require_free "flightdeck's dashboard" "$http_addr" HTTP_ADDR
require_free "the Fly simulator" "$sim_addr" SIM_ADDR

mkdir -p "$run_dir"

# --- 1. PostgreSQL -----------------------------------------------------------------------------------------

# find_pg_bin: the directory holding initdb, pg_ctl and psql (PATH first, then the newest Debian version).
find_pg_bin() {
  local dir initdb
  if initdb=$(command -v initdb 2>/dev/null); then
    dir=$(dirname "$(readlink -f "$initdb")")
    [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ] && { echo "$dir"; return 0; }
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ] && { echo "$dir"; return 0; }
  done
  return 1
}

# as_postgres CMD...: run CMD as the cluster's owner (the postgres user when this script runs as root).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_bin=$(find_pg_bin || true)
if [ -z "$pg_bin" ]; then
  "$root/hack/install-prereqs.sh" --run
  pg_bin=$(find_pg_bin) || die "PostgreSQL's initdb, pg_ctl and psql not found after installing"
fi
command -v curl >/dev/null 2>&1 || "$root/hack/install-prereqs.sh" --run
# psql_ ARGS...: psql on DATABASE_URL, unaligned tuples only, stopping at the first error.
psql_() { PGCONNECT_TIMEOUT=5 "$pg_bin/psql" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -tA "$@"; }

own_database=false
if [ -n "${DATABASE_URL:-}" ]; then
  say "using the database of DATABASE_URL (no local PostgreSQL)"
else
  own_database=true
  require_free "PostgreSQL" "127.0.0.1:$pg_port" PG_PORT
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, and PostgreSQL refuses root: the postgres user is missing (apt-get install postgresql creates it)"
    mkdir -p "$pg_dir"
    [ "$(stat -c %U "$pg_dir")" = postgres ] || chown -R postgres:postgres "$pg_dir"
    as_postgres test -x "$pg_dir" ||
      die "the postgres user cannot reach $pg_dir (a folder above it is private): move the repository or set DATABASE_URL"
  else
    mkdir -p "$pg_dir"
  fi
  if [ -f "$pg_data/postmaster.pid" ] && as_postgres "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    die "a PostgreSQL already runs on $pg_data (left by an earlier make run?): stop it with $(
      [ "$(id -u)" -eq 0 ] && printf 'runuser -u postgres -- ')$pg_bin/pg_ctl -D $pg_data stop"
  fi
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in ${pg_data#"$root"/}"
    as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-instructions \
      >"$pg_dir/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$pg_dir/initdb.log")"
  else
    say "reusing the PostgreSQL cluster in ${pg_data#"$root"/}"
  fi
  say "starting PostgreSQL on 127.0.0.1:$pg_port"
  # pg_ctl starts the postmaster in a session of its own; stopped by cleanup with pg_ctl stop.
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/postgres.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null ||
    die "PostgreSQL did not start: $(tail -n 5 "$pg_dir/postgres.log")"
  pg_started=true
  echo "postgres $(head -n 1 "$pg_data/postmaster.pid")" >"$run_dir/pids"
  DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
  if [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname = 'flightdeck'")" != 1 ]; then
    psql_ -c "CREATE DATABASE flightdeck"
    say "created the database flightdeck"
  fi
  DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/flightdeck?sslmode=disable"
fi
export DATABASE_URL

# --- 2. the Fly simulator ----------------------------------------------------------------------------------
say "starting flightdeck sim on $sim_addr"
setsid "$bin" sim --addr "$sim_addr" --status-port 0 --boot "$sim_boot" --install "$sim_install" \
  >"$run_dir/sim.log" 2>&1 &
sim_pid=$!
$pg_started || : >"$run_dir/pids"
echo "flightdeck-sim $sim_pid" >>"$run_dir/pids"

# sim_setting NAME: the value the simulator printed as NAME=value.
sim_setting() { sed -n "s/^$1=//p" "$run_dir/sim.log" | head -n 1; }
for ((i = 0; i < 100; i++)); do
  [ -n "$(sim_setting PROBE_URL_TEMPLATE)" ] && break
  kill -0 "$sim_pid" 2>/dev/null || die "flightdeck sim exited: $(tail -n 5 "$run_dir/sim.log")"
  sleep 0.1
done
[ -n "$(sim_setting PROBE_URL_TEMPLATE)" ] || die "flightdeck sim printed no settings within 10s; see $run_dir/sim.log"
export FLY_API_BASE_URL FLY_API_TOKEN FLY_APP_NAME PROBE_URL_TEMPLATE
FLY_API_BASE_URL=$(sim_setting FLY_API_BASE_URL)
FLY_API_TOKEN=$(sim_setting FLY_API_TOKEN)
FLY_APP_NAME=$(sim_setting FLY_APP_NAME)
PROBE_URL_TEMPLATE=$(sim_setting PROBE_URL_TEMPLATE)

# --- 3. schema and demo deployments ------------------------------------------------------------------------
"$bin" migrate >"$run_dir/migrate.log" 2>&1 || die "flightdeck migrate failed: $(tail -n 5 "$run_dir/migrate.log")"

demo_names="'demo-healthy', 'demo-invalid', 'demo-autostop'"
replaced=$(psql_ -c "WITH gone AS (DELETE FROM deployments WHERE name IN ($demo_names) AND machine_id IS NOT NULL RETURNING 1)
                     SELECT count(*) FROM gone")
[ "$replaced" = 0 ] || say "deleted $replaced demo deployments whose machines lived in an earlier run's simulator; inserting them again"
inserted=$(psql_ <<'SQL'
WITH demo(name, package) AS (VALUES
    ('demo-healthy',  '@modelcontextprotocol/server-everything'),
    ('demo-invalid',  '@invalid/does-not-exist'),
    ('demo-autostop', '@modelcontextprotocol/server-memory')
), added AS (
    INSERT INTO deployments (name, package)
    SELECT name, package FROM demo WHERE NOT EXISTS (SELECT 1 FROM deployments d WHERE d.name = demo.name)
    RETURNING 1
)
SELECT count(*) FROM added
SQL
)
say "inserted $inserted demo deployments ($((3 - inserted)) already there)"
stale=$(psql_ -c "SELECT count(*) FROM deployments WHERE machine_id IS NOT NULL AND deleted_at IS NULL AND status <> 'failed'")
[ "$stale" = 0 ] || say "other deployments with a machine of an earlier run's simulator: $stale; flightdeck will report them failed (Machine no longer exists)"

# --- 4. flightdeck run -----------------------------------------------------------------------------------
say "starting flightdeck run (dashboard on http://$http_addr/)"
HTTP_ADDR=$http_addr CHECK_INTERVAL=${CHECK_INTERVAL:-10s} LOG_FORMAT=${LOG_FORMAT:-console} \
  setsid "$bin" run >"$run_dir/flightdeck.log" 2>&1 &
fd_pid=$!
echo "flightdeck-run $fd_pid" >>"$run_dir/pids"

url_host=${http_addr%:*}
case "$url_host" in "" | 0.0.0.0) url_host=127.0.0.1 ;; esac
dashboard="http://$url_host:${http_addr##*:}/"
for ((i = 0; i < 600; i++)); do
  curl -fsS -o /dev/null --max-time 2 "${dashboard}readyz" 2>/dev/null && break
  kill -0 "$fd_pid" 2>/dev/null || die "flightdeck run exited: $(tail -n 20 "$run_dir/flightdeck.log")"
  sleep 0.1
done
curl -fsS -o /dev/null --max-time 2 "${dashboard}readyz" || die "flightdeck run is not ready after 60s; see $run_dir/flightdeck.log"

cat <<EOF

  flightdeck is running.
    dashboard  $dashboard
    API        ${dashboard}api/deployments
    metrics    ${dashboard}metrics
$($own_database && printf "    database   psql 'postgres://postgres@127.0.0.1:%s/flightdeck'  (trust: no password)" "$pg_port")
    logs       ${run_dir#"$root"/}/flightdeck.log, ${run_dir#"$root"/}/sim.log
  demo-autostop's machine stops (as the Fly proxy stops an idle machine) ${autostop_after}s after it is running.
  Ctrl-C stops everything.

EOF

tail -n +1 -F "$run_dir/flightdeck.log" &
tail_pid=$!

# --- follow: watch the children, autostop the demo machine on time ----------------------------------------
autostop_machine="" autostop_at=0 autostop_done=false
while :; do
  if ! kill -0 "$fd_pid" 2>/dev/null; then
    code=0 && wait "$fd_pid" || code=$?
    fd_pid=""
    die "flightdeck run exited on its own (code $code); see $run_dir/flightdeck.log"
  fi
  if ! kill -0 "$sim_pid" 2>/dev/null; then
    code=0 && wait "$sim_pid" || code=$?
    sim_pid=""
    die "flightdeck sim exited on its own (code $code); see $run_dir/sim.log"
  fi
  if [ -z "$autostop_machine" ]; then
    autostop_machine=$(psql_ -c "SELECT machine_id FROM deployments WHERE name = 'demo-autostop' AND status = 'running'" 2>/dev/null || true)
    [ -n "$autostop_machine" ] && autostop_at=$((SECONDS + autostop_after))
  elif ! $autostop_done && [ "$SECONDS" -ge "$autostop_at" ]; then
    autostop_done=true
    if curl -fsS -o /dev/null --max-time 5 -X POST -H "Authorization: Bearer $FLY_API_TOKEN" \
      -H 'Content-Type: application/json' -d '{"mode":"stop"}' "$FLY_API_BASE_URL/_sim/machines/$autostop_machine/autostop"; then
      say "stopped demo-autostop's machine $autostop_machine as the Fly proxy does; start it again with:"
      say "  curl -X POST -H 'Authorization: Bearer $FLY_API_TOKEN' $FLY_API_BASE_URL/_sim/machines/$autostop_machine/autostart"
    else
      say "could not autostop demo-autostop's machine $autostop_machine (see $run_dir/sim.log)"
    fi
  fi
  sleep 1 &
  sleep_pid=$!
  wait "$sleep_pid" || true
  sleep_pid=""
done
