#!/usr/bin/env bash
# `make test`: start the lab, run ruff and pytest with the lab's environment, stop the lab.
# `make bench` (scripts/test.sh bench): the same lab around every bench/*.py.
#
# The lab is always stopped on exit, also when ruff or pytest fail or the run is interrupted, and
# then checked: no LAB_DIR, no process naming LAB_DIR, nothing listening on the lab's ports, no
# namespace, link or /etc/netns directory of its hosts (`lab leftovers`).
# A lab that was already up before the run (a developer's lab, see `manage.py lab up`) is left up.
# Exit status: pytest's when it failed, else ruff's, else 1 when the lab left anything behind.
# Extra arguments go to pytest: scripts/test.sh -x -k ldap
set -uo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
# The lab without Django: a broken app module must never keep the lab from stopping.
LAB=("$PY" -m console.lab)
export LAB_DIR="${LAB_DIR:-/var/lib/dbconsole-lab}"
TEST_TIMEOUT="${TEST_TIMEOUT:-1500}" # seconds for pytest: the whole run stays under 30 minutes

mode=test
if [[ ${1:-} == bench ]]; then
    mode=bench
    shift
fi

# `make test` (no arguments) runs the suite in two shards at once, each with a lab of its own
# (LAB_DIR and LAB_DIR-b, the next /24, its own bridge and host prefix): the lab tests mostly
# wait on servers (the machine stays about half idle), so two shards take about half the time.
# Tests that share something of this machine beyond their lab stay in one shard: the MariaDB
# provisioning and baseline tests (root's ~/.mysql_history, OS users they create), and every
# pgBackRest test (its locks live in /tmp/pgbackrest). With arguments, one lab, one pytest.
SHARD_A=(tests/clusters tests/e2e/test_baseline.py tests/e2e/test_provision_mariadb.py)
SHARD_B=(tests --ignore=tests/clusters --ignore=tests/e2e/test_baseline.py
         --ignore=tests/e2e/test_provision_mariadb.py)

run_shards() {
    local net octets bridge logs status_a status_b
    net=${LAB_NET:-10.77.0.0/24}
    IFS=. read -r -a octets <<<"${net%/*}"
    ((octets[2] = octets[2] < 255 ? octets[2] + 1 : octets[2] - 1))
    bridge=${LAB_BRIDGE:-dbclab0}
    logs=$(mktemp -d)
    .venv/bin/ruff check . && .venv/bin/ruff format --check .
    local ruff_status=$?
    echo "pytest in two shards, each with its own lab; their output follows when both end"
    TEST_SHARD=a scripts/test.sh "${SHARD_A[@]}" >"$logs/a" 2>&1 &
    local pid_a=$!
    TEST_SHARD=b LAB_DIR="$LAB_DIR-b" \
        LAB_NET="${octets[0]}.${octets[1]}.${octets[2]}.0/24" \
        LAB_PREFIX="${LAB_PREFIX:-}b-" LAB_BRIDGE="${bridge:0:8}b" \
        scripts/test.sh "${SHARD_B[@]}" >"$logs/b" 2>&1 &
    local pid_b=$!
    wait "$pid_a"
    status_a=$?
    wait "$pid_b"
    status_b=$?
    echo "=== shard a (${SHARD_A[*]}): exit $status_a"
    cat "$logs/a"
    echo "=== shard b (${SHARD_B[*]}): exit $status_b"
    cat "$logs/b"
    rm -rf "$logs"
    echo "shards: a exit $status_a, b exit $status_b"
    ((status_a != 0)) && return "$status_a"
    ((status_b != 0)) && return "$status_b"
    return "$ruff_status"
}

if [[ $mode == test && $# -eq 0 && -z ${TEST_SHARD:-} ]]; then
    run_shards
    exit $?
fi

# address:port of the lab's servers (each listens on its own address, never on all of them).
lab_endpoints() {
    local url
    for url in "${DATABASE_URL:-}" "${CELERY_BROKER_URL:-}" "${LAB_LDAP_URI:-}"; do
        [[ $url =~ [/@]([0-9.]+):([0-9]+)(/|$) ]] && echo "${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
    done
    [[ -n ${LAB_PG_PORT:-} ]] && echo "$LAB_PG_HOST:$LAB_PG_PORT"
    [[ -n ${LAB_MYSQL_PORT:-} ]] && echo "$LAB_MYSQL_HOST:$LAB_MYSQL_PORT"
    [[ -n ${LAB_SSH_PORT:-} ]] && echo "$LAB_SSH_HOST:$LAB_SSH_PORT"
    return 0
}

# Prints what the stopped lab left behind; prints nothing when it left nothing.
lab_leftovers() {
    local endpoint
    [[ -e $LAB_DIR ]] && echo "directory $LAB_DIR still exists"
    pgrep -a -f -- "$LAB_DIR/" | sed 's/^/process still running: /'
    for endpoint in $(lab_endpoints); do
        ss -Hltn src "$endpoint" | grep -q . && echo "$endpoint still listening"
    done
    "${LAB[@]}" leftovers 2>&1 | grep -v "^directory $LAB_DIR still exists$"
    return 0
}

stop_lab() {
    local status=$? log leftovers
    trap - EXIT INT TERM
    [[ ${keep_lab:-yes} == yes ]] && exit "$status"
    log=$(mktemp)
    if ! "${LAB[@]}" down >"$log" 2>&1; then
        cat "$log" >&2
        echo "lab down FAILED" >&2
        status=1
    fi
    rm -f "$log"
    leftovers=$(lab_leftovers)
    if [[ -n $leftovers ]]; then
        echo "lab down LEFT THINGS BEHIND:" >&2
        echo "$leftovers" >&2
        ((status == 0)) && status=1
    fi
    exit "$status"
}

# A developer's lab that is fully up is reused and left up; a stale one (its processes gone, as
# after a reboot or a killed session) is brought up by this run and stopped at its end.
if [[ -e $LAB_DIR/lab.json ]] && "${LAB[@]}" status >/dev/null 2>&1; then
    keep_lab=yes
    echo "lab: already up before this run; it stays up afterwards ($LAB_DIR)"
else
    keep_lab=no
fi
trap stop_lab EXIT
trap 'exit 130' INT TERM

"${LAB[@]}" up || exit 1
lab_env=$("${LAB[@]}" env) || exit 1
eval "$lab_env"

if [[ $mode == bench ]]; then
    status=0
    for bench in bench/[!_]*.py; do
        echo "=== $bench"
        "$PY" "$bench" || { echo "$bench FAILED" >&2; status=1; }
    done
    exit "$status"
fi

ruff_status=0
if [[ -z ${TEST_SHARD:-} ]]; then # a shard's parent ran ruff
    .venv/bin/ruff check .
    ruff_status=$?
    .venv/bin/ruff format --check .
    format_status=$?
    ((ruff_status == 0)) && ruff_status=$format_status
fi

timeout --foreground --signal=INT --kill-after=60 "$TEST_TIMEOUT" .venv/bin/pytest "$@"
pytest_status=$?
((pytest_status != 0)) && exit "$pytest_status"
exit "$ruff_status"
