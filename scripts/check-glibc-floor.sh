#!/usr/bin/env bash
# Fails when a binary needs a newer glibc or libsystemd than nicroute's floors, naming the
# symbols; prints each binary's highest versions otherwise.
#
#   bash scripts/check-glibc-floor.sh [--glibc 2.31] [--libsystemd 247] BINARY...
#
# A dynamically linked program records, for every symbol it takes from glibc or libsystemd, the
# version node it was linked against (GLIBC_2.29, LIBSYSTEMD_209: `objdump -T`); the dynamic
# loader refuses to start it where a node is missing. The highest node is the real floor.
set -euo pipefail
export LC_ALL=C

glibc_floor=2.31
systemd_floor=247
bins=()
while (($#)); do
    case $1 in
        --glibc) glibc_floor=$2; shift 2 ;;
        --libsystemd) systemd_floor=$2; shift 2 ;;
        -*) echo "check-glibc-floor: unknown option $1" >&2; exit 2 ;;
        *) bins+=("$1"); shift ;;
    esac
done
((${#bins[@]})) || { echo "usage: check-glibc-floor.sh [--glibc V] [--libsystemd N] BINARY..." >&2; exit 2; }

# version_gt A B: A > B for dotted versions.
version_gt() { [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1) == "$1" ]]; }

rc=0
for bin in "${bins[@]}"; do
    [[ -f $bin ]] || { echo "check-glibc-floor: $bin: no such file" >&2; rc=1; continue; }
    # Dynamic symbols with a version: "(GLIBC_2.29) exp" -> "GLIBC 2.29 exp".
    syms=$(objdump -T "$bin" | sed -nE 's/.*[[:space:]]\(?(GLIBC|LIBSYSTEMD)_([0-9.]+)\)?[[:space:]]+(.+)$/\1 \2 \3/p' | sort -u)
    [[ -n $syms ]] || { echo "check-glibc-floor: $bin: no versioned glibc symbols (not a dynamic glibc program?)" >&2; rc=1; continue; }
    top_glibc=$(awk '$1 == "GLIBC" { print $2 }' <<<"$syms" | sort -V | tail -n1)
    top_systemd=$(awk '$1 == "LIBSYSTEMD" { print $2 }' <<<"$syms" | sort -V | tail -n1)
    above=$(while read -r lib v name; do
        if [[ $lib == GLIBC ]] && version_gt "$v" "$glibc_floor"; then echo "$name@GLIBC_$v"; fi
        if [[ $lib == LIBSYSTEMD ]] && version_gt "$v" "$systemd_floor"; then echo "$name@LIBSYSTEMD_$v"; fi
    done <<<"$syms" | sort -u | paste -sd ' ')
    if [[ -n $above ]]; then
        echo "check-glibc-floor: $(basename "$bin") needs more than glibc $glibc_floor / libsystemd $systemd_floor: $above" >&2
        rc=1
    else
        echo "$(basename "$bin"): highest GLIBC_$top_glibc, LIBSYSTEMD_${top_systemd:-none} (floors: glibc $glibc_floor, libsystemd $systemd_floor)"
    fi
done
exit "$rc"
