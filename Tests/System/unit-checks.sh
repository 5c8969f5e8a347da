#!/usr/bin/env bash
# Static checks of units/nicrouted.service with a Debian release's systemd (NSB_SUITE: bookworm's
# 252 by default, trixie's 257; the cached Debian tree's, run chrooted). Debian 11's 247 cannot
# run `systemd-analyze verify` outside a booted system: package.sh verifies the unit there.
#
#   sudo bash Tests/System/unit-checks.sh
#
# Checks: `systemd-analyze verify` exits 0 with empty stderr (it exits 0 on unknown keys, so
# stderr is what counts; the man pages named in Documentation= must exist, so docs/man is
# installed in the tree); a deliberately broken copy does produce stderr (the check is not
# vacuous); `systemd-analyze security --offline=yes --threshold=20` passes, exposure <= 2.0;
# the directives the design relies on are there.
#
# Environment:
#   NICROUTE_BINDIR=DIR   put DIR/nicrouted and DIR/nicroutectl in /usr/bin (verify checks that
#                         ExecStart= and ExecReload= are executable);
#                         default: .build-release/release when built, else a stub
#   see lib-nspawn.sh for the cache and mirror settings
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `unit: N passed, M failed`, exits
# non-zero when a check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UNIT=$REPO/units/nicrouted.service
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"

: "${CHECKS_LABEL:=unit}"
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"

nsb_init
TREE=$(nsb_tree)
nsb_stage "$TREE"
nsb_install "$UNIT" /etc/systemd/system/nicrouted.service
bad=$(mktemp "$NSB_WORK/bad.XXXXXX")
sed 's/^Type=.*/Type=notify\nWatchdogSecs=30s/' "$UNIT" >"$bad"
nsb_install "$bad" /etc/systemd/system/nicrouted-broken.service
for page in "$REPO"/docs/man/*.[1-8]; do
    [[ -f $page ]] && nsb_install "$page" "/usr/share/man/man${page##*.}/$(basename "$page")"
done
bindir=${NICROUTE_BINDIR:-$REPO/.build-release/release}
for b in nicrouted nicroutectl; do
    if [[ -x $bindir/$b ]]; then
        nsb_install "$bindir/$b" "/usr/bin/$b" 0755
    else
        nsb_log "no release build: /usr/bin/$b is a stub for verify's ExecStart=/ExecReload= check"
        printf '#!/bin/sh\nexit 0\n' | nsb_write "/usr/bin/$b" 0755
    fi
done
version=$(nsb_chroot systemd-analyze --version | head -n1)
nsb_log "checking with $version"

set +e

# 1. verify: exit 0 and nothing on stderr.
err=$(nsb_chroot systemd-analyze verify /etc/systemd/system/nicrouted.service 2>&1 >/dev/null)
rc=$?
if ((rc == 0)) && [[ -z $err ]]; then
    ok "systemd-analyze verify: exit 0, empty stderr ($version)"
else
    not_ok "systemd-analyze verify: exit $rc"
    indent <<<"$err"
fi
err=$(nsb_chroot systemd-analyze verify /etc/systemd/system/nicrouted-broken.service 2>&1 >/dev/null)
if [[ $err == *WatchdogSecs* ]]; then
    ok "verify reports an unknown key in a broken copy: ${err%%$'\n'*}"
else
    not_ok "verify reports an unknown key in a broken copy (got: $err)"
fi

# 2. security: exposure at most 2.0.
out=$(nsb_chroot systemd-analyze security --offline=yes --threshold=20 --no-pager /etc/systemd/system/nicrouted.service 2>&1)
rc=$?
exposure=$(grep -oE 'Overall exposure level for nicrouted.service: [0-9.]+' <<<"$out" | awk '{ print $NF }')
echo "# exposure: ${exposure:-?} (threshold 2.0); what is left:"
grep -E '^[-✗] ' <<<"$out" | sed -E 's/ {2,}/  /g' | indent
if ((rc == 0)) && [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
    ok "systemd-analyze security --offline=yes --threshold=20: exposure $exposure"
else
    not_ok "systemd-analyze security --offline=yes --threshold=20: exit $rc, exposure ${exposure:-?}"
    tail -n 5 <<<"$out" | indent
fi

# 3. The directives the design relies on (see docs/systemd.md).
want=(
    '^Type=notify$'
    '^ExecReload=/usr/bin/nicroutectl reconfigure$'
    '^WatchdogSec=[0-9]+s?$'
    '^Restart=on-failure$'
    '^RuntimeDirectory=nicroute$'
    '^StateDirectory=nicroute$'
    '^ConfigurationDirectory=nicroute$'
    '^ExecStart=/usr/bin/nicrouted --state-dir /var/lib/nicroute$'
    '^Before=.*network-online\.target'
    '^CapabilityBoundingSet=CAP_NET_ADMIN$'
    '^AmbientCapabilities=CAP_NET_ADMIN$'
    '^RestrictAddressFamilies=AF_UNIX AF_NETLINK$'
    '^ProtectSystem=strict$'
    '^NoNewPrivileges=yes$'
    '^User=nicroute$'
    '^SystemCallFilter=@system-service$'
    '^WantedBy=multi-user\.target$'
)
missing=()
for re in "${want[@]}"; do grep -qE "$re" "$UNIT" || missing+=("$re"); done
if ((${#missing[@]} == 0)); then
    ok "unit has the expected directives (${#want[@]} patterns)"
else
    not_ok "unit lacks: ${missing[*]}"
fi
if ! grep -qE '^(PrivateNetwork=yes|PrivateUsers=yes)' "$UNIT"; then
    ok "no PrivateNetwork=/PrivateUsers= (they would cut CAP_NET_ADMIN off the host's network)"
else
    not_ok "unit must not set PrivateNetwork=yes or PrivateUsers=yes"
fi

summary
((FAILED == 0))
