# shellcheck shell=bash
# Check reporting for the system tests (booted.sh, unit-checks.sh, package.sh): one line per
# check, `ok - ...` or `not ok - ...`, and a closing `LABEL: N passed, M failed` that
# scripts/test.sh counts.
#
#   CHECKS_LABEL=system; source lib-checks.sh
#   ok "what held"; not_ok "what did not"; summary; ((FAILED == 0))

PASSED=0
FAILED=0
: "${CHECKS_LABEL:=checks}"

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $*"
}
not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $*"
}
skip() { echo "ok - $* # SKIP"; }
# Diagnostic lines under a check (stdin, or the arguments one per line).
indent() { sed 's/^/#   /'; }
note() { printf '#   %s\n' "$@"; }
summary() { echo "$CHECKS_LABEL: $PASSED passed, $FAILED failed"; }

# wait_for SECONDS CMD...: runs CMD every 0.2 s until it succeeds or SECONDS pass.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}
