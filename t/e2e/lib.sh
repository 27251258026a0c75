# shellcheck shell=bash
# Shared by the end-to-end scripts in t/e2e: a check that counts, and nginx under a prefix.
# Source it after scripts/lib.sh.

passed=0 failed=0
# check GOT EXPECTED DESCRIPTION
check() {
    if [ "$1" = "$2" ]; then passed=$((passed + 1)); echo "ok - $3"
    else failed=$((failed + 1)); echo "not ok - $3 (got '$1', expected '$2')"; fi
}

# check_true DESCRIPTION COMMAND...: passes when the command succeeds.
check_true() {
    local description="$1"; shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $description"
    else failed=$((failed + 1)); echo "not ok - $description"; fi
}

# Waits (up to 5 s) until the log holds at least N lines matching PATTERN.
wait_for_log() {
    local log="$1" pattern="$2" n="$3"
    for _ in $(seq 50); do
        [ "$(grep -c -- "$pattern" "$log" || true)" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

# through_precheck CURL_ARGS... URL: `curl -s CURL_ARGS URL` as a browser does it: when the
# answer is the pre-check's page (a meta refresh), once more with the proof cookie it set.
# Prints the last body; a -D file given in CURL_ARGS holds the last headers.
through_precheck() {
    local jar body
    jar=$(mktemp)
    body=$(curl -s -c "$jar" -b "$jar" "$@")
    if [[ "$body" == *'http-equiv="refresh"'* ]]; then
        body=$(curl -s -c "$jar" -b "$jar" "$@")
    fi
    rm -f "$jar"
    printf '%s' "$body"
}

# --- nginx under a prefix ----------------------------------------------------------------------

# The port each script's nginx listens on, in one table so that no two collide; CrowdSec's
# are apart per flavour, and the Test::Nginx suites use 2984.
#   NAME           VENDORED  DEBIAN
E2E_PORTS="
    run            1986      1986
    reload         1987      1987
    ratelimit      1988      1988
    text-browser   1989      1989
    feeds          1990      1990
    faults         1993      1993
    package        3200      3200
    hostile        3300      3301
    metrics        1995      1995
    prometheus     1996      1996
    crowdsec-a     2090      2092
    crowdsec-b     2091      2093
    crowdsec-lapi  8103      8104
"
# e2e_port NAME: the port NAME uses with this flavour (see e2e_flavour).
e2e_port() {
    local column=2
    [ "$flavour" = debian ] && column=3
    awk -v name="$1" -v column="$column" '$1 == name { print $column; found = 1 } END { exit !found }' \
        <<<"$E2E_PORTS" || { echo "no port for $1 in t/e2e/lib.sh" >&2; return 1; }
}

# e2e_flavour FLAVOUR: the build a script tests, vendored or debian. Sets `flavour`, and
# `nginx`: that flavour's nginx for the test build, which nginx_start and nginx_stop run.
e2e_flavour() {
    case "$1" in
        vendored | debian) flavour="$1" ;;
        *) echo "usage: $0 [vendored|debian]" >&2; exit 2 ;;
    esac
    nginx=$(nginx_binary "$flavour-test")
}

# e2e_prefix NAME [INSTANCE...]: a fresh nginx prefix, target/e2e-NAME (target/e2e when NAME
# is empty), with conf/, logs/ and html/; prints it. With INSTANCEs, each gets those folders in
# PREFIX/INSTANCE instead: several nginx instances under one prefix.
e2e_prefix() {
    local prefix="$ROOT/target/e2e${1:+-$1}" instance
    shift
    rm -rf "$prefix"
    for instance in "${@:-.}"; do
        mkdir -p "$prefix/$instance"/{conf,logs,html}
    done
    echo "$prefix"
}

# on_exit COMMAND [ARG...]: runs it when the script exits, however it exits. Cleanups run last
# registered first, each whatever the others did, quietly (there may be nothing left to clean).
E2E_CLEANUPS=()
on_exit() {
    local command
    printf -v command '%q ' "$@"
    E2E_CLEANUPS=("$command" "${E2E_CLEANUPS[@]}")
    trap e2e_cleanup EXIT
}
e2e_cleanup() {
    local command
    for command in "${E2E_CLEANUPS[@]}"; do eval "$command" 2>/dev/null || true; done
}

# listening PORT: whether something listens on 127.0.0.1:PORT (or any address), from /proc.
listening() {
    awk -v port="$(printf ':%04X' "$1")" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == port { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_for_port PORT: waits (up to 5 s) until something listens on it.
wait_for_port() {
    local _
    for _ in $(seq 50); do listening "$1" && return 0; sleep 0.1; done
    echo "# nothing listens on port $1" >&2
    return 1
}

# nginx_start PREFIX PORT: starts nginx (the flavour's, see e2e_flavour) with PREFIX/conf/nginx.conf,
# and waits until it listens on PORT and all its workers run. It runs in PREFIX, which is how
# nginx_stop knows its processes from another script's nginx on the same port.
nginx_start() {
    local prefix="$1" port="$2" workers master _
    (cd "$prefix" && "$nginx" -p "$prefix" -c conf/nginx.conf)
    wait_for_port "$port"
    workers=$(sed -n 's/^ *worker_processes *\([0-9]*\);.*/\1/p' "$prefix/conf/nginx.conf")
    for _ in $(seq 50); do
        master=$(cat "$prefix/logs/nginx.pid" 2>/dev/null) &&
            [ "$(pgrep -c -P "$master")" -ge "${workers:-1}" ] && return 0
        sleep 0.1
    done
    echo "# nginx under $prefix did not start its ${workers:-1} workers" >&2
    return 1
}

# nginx_stop PREFIX: stops the nginx under PREFIX, if one runs, and waits until it is gone.
# Whatever nginx process still runs in PREFIX 10 s later is killed, and so are workers left
# by a master killed earlier: they live on and keep the port.
nginx_stop() {
    local prefix="$1" master proc comm leftovers _
    if master=$(cat "$prefix/logs/nginx.pid" 2>/dev/null); then
        "$nginx" -p "$prefix" -c conf/nginx.conf -s stop 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
    fi
    for _ in $(seq 50); do
        leftovers=()
        for proc in /proc/[0-9]*; do
            read -r comm 2>/dev/null <"$proc/comm" || continue
            if [ "$comm" = nginx ] && [ "$(readlink "$proc/cwd")" = "$prefix" ]; then
                leftovers+=("${proc#/proc/}")
            fi
        done
        ((${#leftovers[@]})) || return 0
        kill -9 "${leftovers[@]}" 2>/dev/null || true
        sleep 0.1
    done
}
