#!/usr/bin/env bash
# Start / stop the throwaway servers the integration tests talk to:
#   * a real PostgreSQL server  -> SHIPYARD_TEST_POSTGRES_URL
#   * moto's standalone S3 server -> SHIPYARD_TEST_S3_ENDPOINT (+ AWS_* test credentials)
# Both listen on 127.0.0.1 only, on free ports, with their data in a temporary directory.
#
# Usage:
#   eval "$(scripts/services.sh start)"   # prints `export VAR=...` lines on stdout
#   make test
#   scripts/services.sh stop
#   scripts/services.sh status | env      # is it running? / print the exports again
#
# Progress and errors go to stderr; only the export lines go to stdout.
# State (pids, ports, directories, logs) lives in .ci/state/ (git-ignored).
#
# Needs: PostgreSQL server binaries (initdb, pg_ctl, postgres, psql, pg_isready; found on
# PATH or under /usr/lib/postgresql/*/bin, or set PG_BIN), python3, and moto_server from
# the dev virtualenv (`make .venv/.installed-dev`; or set MOTO_SERVER).
# Optional overrides: SHIPYARD_PG_PORT, SHIPYARD_S3_PORT, SHIPYARD_PG_OS_USER,
# SHIPYARD_SERVICES_STATE, SHIPYARD_PG_TIMEOUT (s, default 60), SHIPYARD_S3_TIMEOUT (s, default 60).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SHIPYARD_SERVICES_STATE:-$ROOT/.ci/state}"
STATE_FILE="$STATE_DIR/services.state"   # key=value lines, sourced by `stop`
EXPORTS_FILE="$STATE_DIR/exports.sh"     # the lines `start` printed
PYTHON="${PYTHON:-python3}"
PG_TIMEOUT="${SHIPYARD_PG_TIMEOUT:-60}"
S3_TIMEOUT="${SHIPYARD_S3_TIMEOUT:-60}"
HOST=127.0.0.1
PG_DB=shipyard_test
PG_APP_USER=shipyard

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- helpers

# Append key=value to the state file (values are shell-quoted).
state_set() { printf '%s=%q\n' "$1" "$2" >>"$STATE_FILE"; }

load_state() {
    pg_root='' pg_data='' pg_port='' pg_pid='' pg_os_user='' pg_bin=''
    moto_pid='' moto_port=''
    # shellcheck disable=SC1090
    [[ -f "$STATE_FILE" ]] && source "$STATE_FILE"
    return 0
}

# Locate the directory holding initdb/pg_ctl/postgres/psql/pg_isready.
find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/initdb" ]] || return 1
        printf '%s\n' "$PG_BIN"; return 0
    fi
    local p d
    # initdb on PATH (often a symlink into /usr/lib/postgresql/N/bin): use its real dir.
    if p="$(command -v initdb 2>/dev/null)"; then
        d="$(dirname "$(readlink -f "$p")")"
        if [[ -x "$d/pg_ctl" && -x "$d/postgres" ]]; then printf '%s\n' "$d"; return 0; fi
    fi
    # Debian/Ubuntu layout: the newest /usr/lib/postgresql/N/bin.
    d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
        printf '%s\n' "$d"; return 0
    fi
    return 1
}

# A TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
    "$PYTHON" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

port_in_use() {  # port -> 0 if something accepts connections on 127.0.0.1:port
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Run a command as the PostgreSQL OS user (postgres refuses to run as root).
as_pg_user() {
    if [[ "$(id -un)" == "$pg_os_user" ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$pg_os_user" -- "$@"
    else
        su -s /bin/sh "$pg_os_user" -c "$(printf '%q ' "$@")"
    fi
}

pick_pg_os_user() {
    if [[ "$(id -u)" != 0 ]]; then id -un; return 0; fi
    local u="${SHIPYARD_PG_OS_USER:-}"
    if [[ -n "$u" ]]; then
        id -u "$u" >/dev/null 2>&1 || die "SHIPYARD_PG_OS_USER=$u does not exist"
    elif id -u postgres >/dev/null 2>&1; then
        u=postgres
    else
        u=shipyard-pg
        if ! id -u "$u" >/dev/null 2>&1; then
            log "creating system user $u to run PostgreSQL (it refuses to run as root)"
            if command -v useradd >/dev/null 2>&1; then
                useradd --system --user-group --no-create-home --home-dir /nonexistent \
                    --shell /usr/sbin/nologin "$u" >&2
            else
                adduser --system --group --no-create-home --home /nonexistent "$u" >&2
            fi
        fi
    fi
    printf '%s\n' "$u"
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Is pid $1 alive and is its command line matching $2 (guards against recycled pids)?
pid_is() {
    pid_alive "$1" || return 1
    [[ -r "/proc/$1/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# Send TERM, wait up to $3 seconds, then KILL.
kill_and_wait() {
    local pid="$1" name="$2" secs="${3:-15}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) ignored SIGTERM for ${secs}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
    log "WARNING: $name (pid $pid) is still alive"
}

log_tail() {  # file label
    [[ -s "$1" ]] || return 0
    log "---- last lines of $2 ($1) ----"
    tail -n 30 "$1" >&2 || true
    log "----"
}

http_ok() {  # url -> 0 if an HTTP server answers (any status)
    if command -v curl >/dev/null 2>&1; then
        curl --noproxy '*' -s -o /dev/null --max-time 2 "$1"
    else
        "$PYTHON" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    opener.open(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass  # the server answered
except Exception:
    sys.exit(1)
EOF
    fi
}

# ---------------------------------------------------------------------------- postgres

start_postgres() {
    pg_bin="$(find_pg_bin)" || die "PostgreSQL server binaries not found (initdb/pg_ctl/postgres).
  Install them (Debian: apt-get install postgresql) or set PG_BIN=/path/to/bin."
    local b
    for b in initdb pg_ctl postgres psql pg_isready; do
        [[ -x "$pg_bin/$b" ]] || die "$pg_bin/$b is missing"
    done
    pg_os_user="$(pick_pg_os_user)"
    pg_port="${SHIPYARD_PG_PORT:-$(free_port)}"
    port_in_use "$pg_port" && die "port $pg_port on $HOST is already in use"
    local pass
    pass="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

    # The data dir must be reachable by the postgres OS user: fall back to /tmp if $TMPDIR is not.
    local base="${TMPDIR:-/tmp}"
    if [[ "$(id -un)" != "$pg_os_user" ]] && ! (cd / && as_pg_user test -x "$base") 2>/dev/null; then
        base=/tmp
    fi
    pg_root="$(mktemp -d "$base/shipyard-pg.XXXXXX")"
    pg_data="$pg_root/data"
    state_set pg_root "$pg_root"
    state_set pg_data "$pg_data"
    state_set pg_bin "$pg_bin"
    state_set pg_os_user "$pg_os_user"
    state_set pg_port "$pg_port"
    chmod 700 "$pg_root"
    [[ "$(id -un)" == "$pg_os_user" ]] || chown "$pg_os_user:" "$pg_root"

    log "PostgreSQL: $("$pg_bin/postgres" --version) in $pg_data, as OS user $pg_os_user"
    # cd into the temp dir: the postgres OS user may not be able to read our cwd.
    (cd "$pg_root" && as_pg_user "$pg_bin/initdb" -D "$pg_data" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 --no-locale --encoding=UTF8 \
        >"$pg_root/initdb.log" 2>&1) || {
        log_tail "$pg_root/initdb.log" initdb
        die "initdb failed"
    }

    log "PostgreSQL: starting on $HOST:$pg_port"
    # Throwaway server: durability off for speed; unix socket inside the temp dir.
    local opts="-c listen_addresses=$HOST -p $pg_port -c unix_socket_directories=$pg_root"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if ! (cd "$pg_root" && as_pg_user "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/postgres.log" \
        -o "$opts" -w -t "$PG_TIMEOUT" start </dev/null >&2); then
        log_tail "$pg_root/postgres.log" "PostgreSQL log"
        die "PostgreSQL did not start on $HOST:$pg_port within ${PG_TIMEOUT}s"
    fi
    pg_pid="$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)"
    state_set pg_pid "$pg_pid"

    local i ok=0
    for ((i = 0; i < PG_TIMEOUT; i++)); do
        if "$pg_bin/pg_isready" -q -h "$HOST" -p "$pg_port" -t 2; then ok=1; break; fi
        sleep 1
    done
    if [[ $ok != 1 ]]; then
        log_tail "$pg_root/postgres.log" "PostgreSQL log"
        die "PostgreSQL is not accepting connections on $HOST:$pg_port after ${PG_TIMEOUT}s"
    fi

    # Superuser over the unix socket (trust), to create the test role and database.
    "$pg_bin/psql" -X -q -h "$pg_root" -p "$pg_port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >&2 <<EOF || die "could not create role/database in PostgreSQL"
CREATE ROLE $PG_APP_USER LOGIN CREATEDB PASSWORD '$pass';
CREATE DATABASE $PG_DB OWNER $PG_APP_USER;
EOF
    PG_URL="postgresql://$PG_APP_USER:$pass@$HOST:$pg_port/$PG_DB"
    # Final check the way the tests connect: TCP + password.
    "$pg_bin/psql" -X -q -At "$PG_URL" -c 'SELECT 1' >/dev/null \
        || die "cannot connect to $HOST:$pg_port as $PG_APP_USER with password"
    log "PostgreSQL: ready (pid $pg_pid), database $PG_DB, user $PG_APP_USER"
}

stop_postgres() {
    [[ -n "$pg_root" ]] || return 0
    if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" && -n "$pg_bin" ]]; then
        log "PostgreSQL: stopping (port ${pg_port:-?})"
        (cd "$pg_root" && as_pg_user "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop \
            </dev/null >&2) || log "pg_ctl stop failed; killing the postmaster"
    fi
    if [[ -n "$pg_pid" ]] && pid_is "$pg_pid" postgres; then
        kill_and_wait "$pg_pid" postgres 15
    fi
    if [[ -f "$pg_root/postgres.log" ]]; then
        cp -f "$pg_root/postgres.log" "$STATE_DIR/postgres.log" 2>/dev/null || true
    fi
    case "$pg_root" in
        */shipyard-pg.*) rm -rf "$pg_root" ;;
        *) log "not removing unexpected directory $pg_root" ;;
    esac
}

# ---------------------------------------------------------------------------- moto (S3)

start_moto() {
    local moto="${MOTO_SERVER:-$ROOT/.venv/bin/moto_server}"
    [[ -x "$moto" ]] || die "moto_server not found at $moto.
  Run 'make .venv/.installed-dev' first (installs moto[server] into .venv), or set MOTO_SERVER."
    moto_port="${SHIPYARD_S3_PORT:-$(free_port)}"
    port_in_use "$moto_port" && die "port $moto_port on $HOST is already in use"
    local mlog="$STATE_DIR/moto.log"

    log "S3 (moto): starting on $HOST:$moto_port"
    # Fully detached from our stdout, so `$(services.sh start)` does not wait for it.
    nohup "$moto" -H "$HOST" -p "$moto_port" </dev/null >"$mlog" 2>&1 &
    moto_pid=$!
    state_set moto_pid "$moto_pid"
    state_set moto_port "$moto_port"

    local i ok=0
    for ((i = 0; i < S3_TIMEOUT * 4; i++)); do
        if ! pid_alive "$moto_pid"; then
            log_tail "$mlog" "moto log"
            die "moto_server exited during start-up"
        fi
        if http_ok "http://$HOST:$moto_port/"; then ok=1; break; fi
        sleep 0.25
    done
    if [[ $ok != 1 ]]; then
        log_tail "$mlog" "moto log"
        die "moto_server did not answer on http://$HOST:$moto_port within ${S3_TIMEOUT}s"
    fi
    log "S3 (moto): ready (pid $moto_pid)"
}

stop_moto() {
    [[ -n "$moto_pid" ]] || return 0
    if pid_is "$moto_pid" moto_server; then
        log "S3 (moto): stopping (pid $moto_pid, port ${moto_port:-?})"
        kill_and_wait "$moto_pid" moto_server 15
    fi
}

# ---------------------------------------------------------------------------- commands

all_alive() {
    load_state
    [[ -n "$moto_pid" && -n "$pg_pid" ]] || return 1
    pid_is "$moto_pid" moto_server && pid_is "$pg_pid" postgres
}

cmd_stop() {
    load_state
    if [[ ! -f "$STATE_FILE" ]]; then
        log "nothing to stop (no $STATE_FILE)"
        return 0
    fi
    stop_moto
    stop_postgres
    rm -f "$STATE_FILE" "$EXPORTS_FILE"
    log "stopped"
}

cmd_start() {
    umask 077  # the state files hold the database password
    mkdir -p "$STATE_DIR"
    if [[ -f "$STATE_FILE" ]]; then
        if all_alive && [[ -f "$EXPORTS_FILE" ]]; then
            log "already running (scripts/services.sh stop to stop); printing its settings"
            cat "$EXPORTS_FILE"
            return 0
        fi
        log "cleaning up a previous, incomplete run"
        cmd_stop
    fi
    load_state
    : >"$STATE_FILE"
    # If anything below fails, tear down what was started.
    trap 'rc=$?; if [[ $rc != 0 ]]; then log "start failed; cleaning up"; cmd_stop || true; fi' EXIT

    start_postgres
    start_moto

    {
        printf 'export SHIPYARD_TEST_POSTGRES_URL=%q\n' "$PG_URL"
        printf 'export SHIPYARD_TEST_S3_ENDPOINT=%q\n' "http://$HOST:$moto_port"
        printf 'export AWS_ACCESS_KEY_ID=testing\n'
        printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
        printf 'export AWS_DEFAULT_REGION=us-east-1\n'
        # Keep any configured HTTP proxy away from the local servers.
        if [[ -n "${http_proxy:-}${HTTP_PROXY:-}${https_proxy:-}${HTTPS_PROXY:-}" ]]; then
            local np="${NO_PROXY:-${no_proxy:-}}"
            np="${np:+$np,}127.0.0.1,localhost"
            printf 'export NO_PROXY=%q\nexport no_proxy=%q\n' "$np" "$np"
        fi
    } >"$EXPORTS_FILE"
    trap - EXIT
    log "all services up; state in $STATE_DIR"
    cat "$EXPORTS_FILE"
}

cmd_status() {
    if [[ ! -f "$STATE_FILE" ]]; then log "not running"; return 1; fi
    load_state
    local rc=0
    if pid_is "${pg_pid:-}" postgres; then log "PostgreSQL: running, pid $pg_pid, $HOST:$pg_port"
    else log "PostgreSQL: NOT running"; rc=1; fi
    if pid_is "${moto_pid:-}" moto_server; then log "S3 (moto): running, pid $moto_pid, $HOST:$moto_port"
    else log "S3 (moto): NOT running"; rc=1; fi
    return $rc
}

cmd_env() {
    [[ -f "$EXPORTS_FILE" ]] || die "not running (no $EXPORTS_FILE)"
    cat "$EXPORTS_FILE"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 {start|stop|status|env}" >&2
        # shellcheck disable=SC2016  # the $( ) is meant literally
        echo '  eval "$('"$0"' start)"; make test; '"$0"' stop' >&2
        exit 2
        ;;
esac
