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
