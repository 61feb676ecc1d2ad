# shellcheck shell=bash
# Helpers shared by scripts/dev, scripts/test and scripts/bench. Sourcing this
# file only defines functions and exports defaults; nothing starts until a
# script calls ensure_* (or build_release). Every service is reused when
# something already answers on its port, and only what this invocation started
# is stopped again (see stop_started_on_exit), so two commands can share one
# MariaDB or Redis.

KS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KS_VENV="$KS_ROOT/.venv"
KS_LOCAL="$KS_ROOT/.local"
KS_PIDS="$KS_LOCAL/pids"
KS_LOGS="$KS_LOCAL/logs"

# ---------------------------------------------------------------------------
# Local defaults. Each is set only when the caller has not set it, so any of
# them can be overridden from the shell (e.g. DB_PORT=3307 scripts/dev).
# ---------------------------------------------------------------------------
: "${DB_PORT:=3306}"
: "${REDIS_PORT:=6379}"
: "${MOTO_PORT:=5000}"

: "${DATABASE_URL:=mysql://root@127.0.0.1:${DB_PORT}/kicksync}"
: "${REDIS_URL:=redis://127.0.0.1:${REDIS_PORT}}"
: "${AWS_ENDPOINT_URL:=http://127.0.0.1:${MOTO_PORT}}"
: "${AWS_REGION:=ap-northeast-2}"
: "${AWS_DEFAULT_REGION:=$AWS_REGION}"
# moto and LocalStack accept any credentials; fixed ones keep the SDKs from
# looking for a real profile.
: "${AWS_ACCESS_KEY_ID:=test}"
: "${AWS_SECRET_ACCESS_KEY:=test}"
# Local-only secrets: fixed so tokens and signed webhooks survive a restart.
: "${JWT_SECRET:=kicksync-local-dev-jwt-secret-not-for-production}"
: "${ADMIN_EMAIL:=admin@kicksync.local}"
: "${ADMIN_PASSWORD:=admin-password-1}"
: "${PORTONE_API_BASE:=http://127.0.0.1:3100}"
: "${PORTONE_API_SECRET:=local-portone-secret}"
: "${PORTONE_STORE_ID:=store-local}"
: "${PORTONE_WEBHOOK_SECRET:=whsec_a1wPPpGi1HcI47Fcap8tQMjhezpfCdLm}"
# Outside the work tree so a fresh clone (CI) still finds yesterday's build.
: "${CARGO_TARGET_DIR:=$HOME/.cache/kicksync-target}"
# SAM CLI would otherwise try to send usage metrics from an offline machine.
: "${SAM_CLI_TELEMETRY:=0}"

export DB_PORT REDIS_PORT MOTO_PORT DATABASE_URL REDIS_URL AWS_ENDPOINT_URL \
    AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
    JWT_SECRET ADMIN_EMAIL ADMIN_PASSWORD PORTONE_API_BASE PORTONE_API_SECRET \
    PORTONE_STORE_ID PORTONE_WEBHOOK_SECRET CARGO_TARGET_DIR SAM_CLI_TELEMETRY

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------
ks_log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
ks_die() {
    printf '\033[1;31mxx\033[0m %s\n' "$*" >&2
    exit 1
}

# Prints the last lines of a log, for when a service refuses to start.
ks_show_log() {
    if [[ -f "$1" ]]; then tail -n 20 "$1" >&2; fi
}

# Finds a binary in PATH or the sbin directories a non-root PATH lacks.
ks_find_bin() {
    local name="$1" dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
        [[ -x "$dir/$name" ]] && { printf '%s\n' "$dir/$name"; return 0; }
    done
    return 1
}

KS_APT_UPDATED=""
# Installs Debian packages; the index is refreshed once per invocation.
ks_apt_install() {
    local -a as_root=()
    [[ $EUID -eq 0 ]] || as_root=(sudo)
    command -v apt-get >/dev/null 2>&1 ||
        ks_die "need the package(s) $*, and apt-get is not available: install them yourself"
    if [[ -z "$KS_APT_UPDATED" ]]; then
        "${as_root[@]}" apt-get update -qq >&2
        KS_APT_UPDATED=1
    fi
    ks_log "installing Debian packages: $*"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >&2
}

ks_http_up() { curl -s -o /dev/null --max-time 1 "$1"; }

# ---------------------------------------------------------------------------
# Processes started by this invocation, as "pid:name" words. Only these are
# stopped on exit; services that were already running are left alone.
# ---------------------------------------------------------------------------
KS_STARTED=""

ks_track() { KS_STARTED="$KS_STARTED $1:$2"; }

ks_stop_started() {
    local entry pid name _
    for entry in $KS_STARTED; do
        pid="${entry%%:*}" name="${entry#*:}"
        if kill -0 "$pid" 2>/dev/null; then
            ks_log "stopping $name (pid $pid)"
            kill "$pid" 2>/dev/null || true
        fi
    done
    # Give each up to 10 s to shut down cleanly (MariaDB flushes InnoDB).
    for entry in $KS_STARTED; do
        pid="${entry%%:*}" name="${entry#*:}"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$KS_PIDS/$name.pid"
    done
    KS_STARTED=""
}

# Call once near the top of a script, before any ensure_*.
stop_started_on_exit() {
    trap ks_stop_started EXIT
    trap 'ks_stop_started; exit 130' INT
    trap 'ks_stop_started; exit 143' TERM
}

# ---------------------------------------------------------------------------
# Python tools: moto_server, sam, cargo-lambda, boto3 for provision.py
# ---------------------------------------------------------------------------
ensure_venv() {
    local requirements="$KS_ROOT/scripts/requirements-dev.txt"
    local stamp="$KS_VENV/.requirements.sha256" wanted
    if [[ ! -x "$KS_VENV/bin/python" ]]; then
        ks_log "creating .venv"
        if ! "${PYTHON:-python3}" -m venv "$KS_VENV" >/dev/null 2>&1; then
            # Debian's own python3 ships venv support separately.
            rm -rf "$KS_VENV"
            ks_apt_install python3-venv
            "${PYTHON:-python3}" -m venv "$KS_VENV"
        fi
    fi
    wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
        ks_log "installing dev tools into .venv (moto, SAM CLI, cargo-lambda; under a minute)"
        "$KS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        printf '%s\n' "$wanted" >"$stamp"
    fi
    # `cargo lambda` and `sam build` find their tools on PATH.
    case ":$PATH:" in
        *":$KS_VENV/bin:"*) ;;
        *) PATH="$KS_VENV/bin:$PATH" ;;
    esac
    export PATH
}

# ---------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------
KS_DB_CLIENT=""

ks_db_ping() {
    "$KS_DB_CLIENT" --no-defaults -uroot -h127.0.0.1 -P"$DB_PORT" --connect-timeout=2 \
        -e 'select 1' >/dev/null 2>&1
}

# Runs SQL as root on the local server.
ks_db_exec() {
    "$KS_DB_CLIENT" --no-defaults -uroot -h127.0.0.1 -P"$DB_PORT" -e "$1"
}

ensure_mariadb() {
    if ! KS_DB_CLIENT="$(ks_find_bin mariadb || ks_find_bin mysql)"; then
        ks_apt_install mariadb-client
        KS_DB_CLIENT="$(ks_find_bin mariadb)"
    fi
    if ks_db_ping; then
        ks_log "MariaDB: reusing 127.0.0.1:$DB_PORT"
        return 0
    fi

    local mariadbd install_db
    if ! mariadbd="$(ks_find_bin mariadbd)"; then
        ks_apt_install mariadb-server
        # The package may have started the system server on this very port.
        if ks_db_ping; then
            ks_log "MariaDB: reusing 127.0.0.1:$DB_PORT (started by the package)"
            return 0
        fi
        mariadbd="$(ks_find_bin mariadbd)"
    fi
    install_db="$(ks_find_bin mariadb-install-db || ks_find_bin mysql_install_db)" ||
        ks_die "mariadb-install-db not found next to $mariadbd"

    local datadir="$KS_LOCAL/mariadb" log="$KS_LOGS/mariadb.log"
    local -a as_user=()
    # mariadbd refuses to run as root unless told to.
    [[ $EUID -eq 0 ]] && as_user=(--user=root)
    mkdir -p "$KS_PIDS" "$KS_LOGS"

    if [[ ! -d "$datadir/mysql" ]]; then
        ks_log "MariaDB: creating a private datadir in .local/mariadb"
        # "normal" gives root an empty password, like the machine's server.
        if ! "$install_db" --no-defaults --datadir="$datadir" "${as_user[@]}" \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$KS_LOGS/mariadb-install.log" 2>&1; then
            ks_show_log "$KS_LOGS/mariadb-install.log"
            rm -rf "$datadir"
            ks_die "mariadb-install-db failed (log: .local/logs/mariadb-install.log)"
        fi
    fi

    # A unix socket path is limited to ~107 bytes; deep checkouts use /tmp.
    local socket="$datadir/mariadb.sock"
    (( ${#socket} < 100 )) || socket="${TMPDIR:-/tmp}/kicksync-mariadb-$DB_PORT.sock"

    ks_log "MariaDB: starting a private server on 127.0.0.1:$DB_PORT"
    # --no-defaults keeps the system my.cnf (its datadir, port, socket) out;
    # the charset matches Debian's packaged server so both behave the same.
    "$mariadbd" --no-defaults "${as_user[@]}" --datadir="$datadir" \
        --socket="$socket" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$KS_PIDS/mariadb.pid" --log-error="$log" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        >/dev/null 2>&1 &
    local pid=$!
    ks_track "$pid" mariadb

    local _
    for _ in $(seq 120); do
        ks_db_ping && { ks_log "MariaDB: ready (pid $pid)"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    ks_show_log "$log"
    ks_die "MariaDB did not start on port $DB_PORT (log: .local/logs/mariadb.log)"
}

# Creates the database named in DATABASE_URL on the local server, if missing.
ensure_database() {
    local name="${DATABASE_URL##*/}"
    name="${name%%\?*}"
    [[ "$name" =~ ^[A-Za-z0-9_]+$ ]] ||
        ks_die "cannot read a database name from DATABASE_URL ($DATABASE_URL)"
    ks_db_exec "CREATE DATABASE IF NOT EXISTS \`$name\` CHARACTER SET utf8mb4"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
ks_redis_ping() {
    [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

ensure_redis() {
    command -v redis-cli >/dev/null 2>&1 || ks_apt_install redis-tools
    if ks_redis_ping; then
        ks_log "Redis: reusing 127.0.0.1:$REDIS_PORT"
        return 0
    fi

    local server
    if ! server="$(ks_find_bin redis-server)"; then
        ks_apt_install redis-server
        if ks_redis_ping; then
            ks_log "Redis: reusing 127.0.0.1:$REDIS_PORT (started by the package)"
            return 0
        fi
        server="$(ks_find_bin redis-server)"
    fi

    # Named by port: a check may run a Redis of its own beside this one (PRIVATE_REDIS_PORT).
    local pidfile="$KS_PIDS/redis-$REDIS_PORT.pid" log="$KS_LOGS/redis-$REDIS_PORT.log"
    mkdir -p "$KS_PIDS" "$KS_LOGS" "$KS_LOCAL/redis"
    rm -f "$pidfile"
    ks_log "Redis: starting a private server on 127.0.0.1:$REDIS_PORT"
    # Nothing is kept on disk: Redis only holds state the app can rebuild.
    "$server" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --pidfile "$pidfile" --logfile "$log" --dir "$KS_LOCAL/redis"

    local _
    for _ in $(seq 50); do
        if ks_redis_ping && [[ -s "$pidfile" ]]; then
            ks_track "$(cat "$pidfile")" "redis-$REDIS_PORT"
            ks_log "Redis: ready (pid $(cat "$pidfile"))"
            return 0
        fi
        sleep 0.2
    done
    ks_show_log "$log"
    ks_die "Redis did not start on port $REDIS_PORT (log: .local/logs/redis-$REDIS_PORT.log)"
}

# ---------------------------------------------------------------------------
# The local AWS endpoint (SQS + DynamoDB). ensure_moto PORT starts moto on
# that port unless something answers there (scripts/test runs its own). With
# no argument it serves AWS_ENDPOINT_URL: whatever answers there is reused
# (moto, or LocalStack from localstack/docker-compose.yml), and if nothing
# does and the URL is on this machine, moto is started on its port.
# ---------------------------------------------------------------------------
ensure_moto() {
    local port="${1:-}"
    command -v curl >/dev/null 2>&1 || ks_apt_install curl
    if [[ -z "$port" ]]; then
        if ks_http_up "$AWS_ENDPOINT_URL"; then
            ks_log "AWS endpoint: reusing $AWS_ENDPOINT_URL"
            return 0
        fi
        [[ "$AWS_ENDPOINT_URL" =~ ^http://(127\.0\.0\.1|localhost):([0-9]+)/?$ ]] ||
            ks_die "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL does not answer, and moto can only be started on this machine"
        port="${BASH_REMATCH[2]}"
    fi

    local url="http://127.0.0.1:$port"
    if ks_http_up "$url"; then
        ks_log "moto: reusing $url"
        return 0
    fi
    [[ -x "$KS_VENV/bin/moto_server" ]] || ks_die "moto_server missing: call ensure_venv first"

    ks_log "moto: starting on $url"
    ks_start_http "moto-$port" "$url" "$KS_VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
}

# Starts "$@" in the background as NAME (its log in .local/logs/NAME.log, its
# pid tracked so that it is stopped on exit) and waits up to 10 s for URL to
# answer.
ks_start_http() {
    local name="$1" url="$2"
    shift 2
    local log="$KS_LOGS/$name.log"
    mkdir -p "$KS_PIDS" "$KS_LOGS"
    "$@" >>"$log" 2>&1 &
    local pid=$!
    printf '%s\n' "$pid" >"$KS_PIDS/$name.pid"
    ks_track "$pid" "$name"

    local _
    for _ in $(seq 50); do
        ks_http_up "$url" && { ks_log "$name: ready on $url (pid $pid)"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    ks_show_log "$log"
    ks_die "$name did not answer on $url within 10 s (log: .local/logs/$name.log)"
}

# ---------------------------------------------------------------------------
# The fake PortOne (the fake-portone crate), on the address PORTONE_API_BASE
# names, unless something already answers there (a fake from another command,
# or whatever PortOne stand-in you run). It delivers its signed webhooks to
# FAKE_PORTONE_WEBHOOK_URL, the local runner's webhook route by default. Call
# after build_release: it runs the release binary.
# ---------------------------------------------------------------------------
ensure_fake_portone() {
    if ! [[ "$PORTONE_API_BASE" =~ ^http://(127\.0\.0\.1|localhost):([0-9]+)/?$ ]]; then
        ks_log "PortOne: $PORTONE_API_BASE is not on this machine; no fake started"
        return 0
    fi
    local port="${BASH_REMATCH[2]}"
    local url="http://127.0.0.1:$port"
    if ks_http_up "$url"; then
        ks_log "PortOne: reusing $url"
        return 0
    fi
    : "${FAKE_PORTONE_WEBHOOK_URL:=http://127.0.0.1:3000/webhooks/portone}"
    export FAKE_PORTONE_WEBHOOK_URL

    ks_log "fake PortOne: starting on $url (webhooks to $FAKE_PORTONE_WEBHOOK_URL)"
    ks_start_http fake-portone "$url" "$KS_RELEASE_BIN/fake-portone" --listen "127.0.0.1:$port"
}

# ---------------------------------------------------------------------------
# Tables and queues from template.yaml, created on AWS_ENDPOINT_URL.
# Extra arguments go to provision.py (e.g. --suffix, --print-env).
# ---------------------------------------------------------------------------
provision() {
    "$KS_VENV/bin/python" "$KS_ROOT/scripts/provision.py" --endpoint "$AWS_ENDPOINT_URL" "$@"
}

# ---------------------------------------------------------------------------
# The one release build. Cargo unifies the features of a dependency over the
# packages one command builds (the bench adds tokio's "process", for one), so
# two commands that build different package sets compile the shared
# dependencies twice. scripts/dev and scripts/bench therefore build the same
# set, every binary of the workspace (the local runner, the bench and each
# Lambda function's host binary), and run what they need from
# $KS_RELEASE_BIN rather than through `cargo run -p`, which would build a
# smaller set again. (scripts/build-lambdas builds for aarch64, a different
# target whose artifacts no host build can share.)
# ---------------------------------------------------------------------------
KS_RELEASE_BIN="$CARGO_TARGET_DIR/release"

build_release() {
    ks_log "cargo build --release --workspace --bins (first build takes a few minutes)"
    cargo build --release --workspace --bins
}

# ---------------------------------------------------------------------------
# A private local runner for the checks that talk HTTP to a whole stack
# (scripts/fuzz, scripts/browser, scripts/faults): the debug build, its own
# database kicksync_NAME (dropped and re-created, so the seed is the only
# data), Redis prefix and fake PortOne (on PORT+1), the tests' moto
# (MOTO_TEST_PORT, 5001), serving on 127.0.0.1:PORT. Stopped on exit with the
# rest.
#
# PRIVATE_REDIS_PORT, when set, points the runner at a Redis of its own on that
# port instead of the shared one (ensure_redis starts it when nothing answers
# there): a check that stops and restarts Redis must not do it to anyone else's.
#
# The two binaries are copied to .local/bin/NAME before they start: the build
# directory is shared with other checkouts, whose next build would otherwise
# replace the binaries of a runner still in use.
# ---------------------------------------------------------------------------
start_private_runner() {
    local name="$1" port="$2"
    MOTO_PORT="${MOTO_TEST_PORT:-5001}"
    AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
    DATABASE_URL="mysql://root@127.0.0.1:${DB_PORT}/kicksync_$name"
    REDIS_KEY_PREFIX="ks$name:"
    PORTONE_API_BASE="http://127.0.0.1:$((port + 1))"
    FAKE_PORTONE_WEBHOOK_URL="http://127.0.0.1:$port/webhooks/portone"
    if [[ -n "${PRIVATE_REDIS_PORT:-}" ]]; then
        REDIS_PORT="$PRIVATE_REDIS_PORT"
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    fi
    export MOTO_PORT AWS_ENDPOINT_URL DATABASE_URL REDIS_KEY_PREFIX PORTONE_API_BASE \
        FAKE_PORTONE_WEBHOOK_URL REDIS_PORT REDIS_URL

    ensure_venv
    ensure_mariadb
    ensure_redis
    ensure_moto "$MOTO_PORT"
    ks_db_exec "DROP DATABASE IF EXISTS kicksync_$name"
    ensure_database
    redis-cli -p "$REDIS_PORT" --scan --pattern "${REDIS_KEY_PREFIX}*" |
        xargs -r redis-cli -p "$REDIS_PORT" del >/dev/null
    provision
    local aws_env
    aws_env="$(provision --print-env)"
    eval "$aws_env"

    ks_log "cargo build -p kicksync-local -p fake-portone (debug)"
    cargo build -p kicksync-local -p fake-portone
    local bin="$KS_LOCAL/bin/$name"
    mkdir -p "$bin"
    cp "$CARGO_TARGET_DIR/debug/kicksync-local" "$CARGO_TARGET_DIR/debug/fake-portone" "$bin/"
    KS_RELEASE_BIN="$bin" ensure_fake_portone
    ks_start_http "$name-runner" "http://127.0.0.1:$port/health" \
        "$bin/kicksync-local" serve --addr "127.0.0.1:$port" --migrate --seed
}

# A banner between the steps of a longer script.
ks_step() { printf '\n\033[1;35m━━━ %s\033[0m\n' "$*" >&2; }
