#!/usr/bin/env bash
# Builds nicroute's .deb and .rpm into a folder (default: dist/), from the same static release
# binary (nicrouted, with nicroutectl a symlink to it) and the same staged tree, then checks
# them: lintian on the .deb (every tag it still prints must be explained in
# packaging/debian/lintian-expected), and the .rpm's file list
# against the .deb's (the only differences allowed are the distributions' own paths: see stage()).
#
#   sudo bash scripts/build-packages.sh [--version V] [OUTDIR]
#
# V defaults to packaging/VERSION on its release tag (v0.1.0), else VERSION~git<commits>.<hash>:
# a snapshot on the way to VERSION, which sorts below the release itself and above older
# snapshots (packaging/VERSION names the next release: bump it right after tagging). Installs
# debhelper, lintian, rpm and g++ when missing (Debian 12). Prints the two packages' paths.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

VERSION=""
OUT=""
while (($#)); do
    case $1 in
        --version) VERSION=${2:?--version needs a value}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "build-packages: unknown option $1" >&2; exit 2 ;;
        *) OUT=$1; shift ;;
    esac
done
OUT=${OUT:-dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '# %s\n' "$*" >&2; }

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
}
[[ $(id -u) -eq 0 ]] || ensure_packages() { :; }   # not root: assume the tools are there
ensure_packages debhelper lintian rpm rpmlint fakeroot g++ libsystemd-dev pkg-config debootstrap

base=$(tr -d ' \n' <packaging/VERSION)
if [[ -z $VERSION ]]; then
    if git describe --exact-match --tags HEAD 2>/dev/null | grep -qx "v$base"; then
        VERSION=$base
    else
        VERSION="$base~git$(git rev-list --count HEAD).$(git rev-parse --short=8 HEAD)"
    fi
fi
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { echo "build-packages: bad version '$VERSION'" >&2; exit 2; }

bin=$(bash scripts/build-release.sh)
# The system the binaries were linked against: debian/rules computes the .deb's dependencies
# from its symbols files.
NICROUTE_SYSROOT=$(bash scripts/build-sysroot.sh)
export NICROUTE_SYSROOT
work=$(mktemp -d /var/tmp/nicroute-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT

# stage DEST deb|rpm: the installed tree, as both packages ship it. Paths differ only where the
# distributions do: zsh completions in vendor-completions (Debian) or site-functions
# (Fedora/RHEL), the license file (Debian: copyright, written by debhelper), the preset (.rpm
# only). The unit is staged
# in /lib/systemd/system for the .deb, where Debian 12's debhelper looks for it; debian/rules
# then moves it to /usr/lib/systemd/system, as in the .rpm.
stage() {
    local d=$1 kind=$2 unitdir zshdir
    if [[ $kind == deb ]]; then
        unitdir=lib/systemd/system zshdir=usr/share/zsh/vendor-completions
    else
        unitdir=usr/lib/systemd/system zshdir=usr/share/zsh/site-functions
    fi
    # One binary, both tools (scripts/build-release.sh): installed once, as the daemon the unit
    # runs; nicroutectl is a relative symlink to it (the binary runs the tool argv[0] names).
    install -D -m 0755 "$bin/nicroute-multicall" "$d/usr/bin/nicrouted"
    ln -s nicrouted "$d/usr/bin/nicroutectl"
    install -D -m 0644 units/nicrouted.service "$d/$unitdir/nicrouted.service"
    # The unit's User=nicroute: both packages create it from this file in their scripts.
    install -D -m 0644 packaging/common/sysusers.conf "$d/usr/lib/sysusers.d/nicroute.conf"
    # Presets enable the service where the distribution goes by them (Fedora, RHEL, SUSE);
    # Debian enables it in the maintainer scripts, and on a merged-/usr Debian 11 or 12 a file of
    # ours alone in /usr/lib/systemd/system-preset (theirs are in /lib) makes purge warn.
    [[ $kind == deb ]] || install -D -m 0644 packaging/common/nicroute.preset "$d/usr/lib/systemd/system-preset/80-nicroute.preset"
    install -D -m 0644 packaging/common/networkd.conf "$d/usr/lib/systemd/networkd.conf.d/80-nicroute.conf"
    install -D -m 0644 packaging/common/NetworkManager.conf "$d/usr/lib/NetworkManager/conf.d/80-nicroute.conf"
    install -D -m 0644 packaging/common/nicroute.conf "$d/etc/nicroute/nicroute.conf"
    install -d -m 0755 "$d/etc/nicroute/nicroute.conf.d"
    install -D -m 0644 packaging/common/rt_protos.conf "$d/etc/iproute2/rt_protos.d/nicroute.conf"
    install -D -m 0644 docs/man/nicroutectl.1 "$d/usr/share/man/man1/nicroutectl.1"
    install -D -m 0644 docs/man/nicroute.conf.5 "$d/usr/share/man/man5/nicroute.conf.5"
    install -D -m 0644 docs/man/nicrouted.8 "$d/usr/share/man/man8/nicrouted.8"
    for tool in nicroutectl nicrouted; do
        # Sourced by bash-completion, not run: no #! line.
        sed '1{/^#!/d}' "completions/$tool.bash" >"$work/$tool.bash"
        install -D -m 0644 "$work/$tool.bash" "$d/usr/share/bash-completion/completions/$tool"
        install -D -m 0644 "completions/$tool.zsh" "$d/$zshdir/_$tool"
        install -D -m 0644 "completions/$tool.fish" "$d/usr/share/fish/vendor_completions.d/$tool.fish"
    done
    for doc in README.md docs/systemd.md docs/control-protocol.md docs/images.md; do
        install -D -m 0644 "$doc" "$d/usr/share/doc/nicroute/${doc##*/}"
    done
    [[ $kind == deb ]] || install -D -m 0644 LICENSE "$d/usr/share/doc/nicroute/LICENSE"
    # Strip once here (both packages get the same bytes; dh_strip and brp-strip find nothing left).
    strip --strip-unneeded "$d/usr/bin/nicrouted"
}

# ---- .deb ------------------------------------------------------------------------------------
log "nicroute $VERSION: .deb"
src=$work/nicroute-$VERSION
mkdir -p "$src"
cp -a packaging/debian "$src/debian"
stage "$src/stage" deb
top=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [[ $top != "$VERSION" ]]; then
    # A snapshot build: an entry of its own on top of the releases older than it (the entry of
    # the release it leads to, if already written, is newer and stays out).
    {
        echo "nicroute ($VERSION) unstable; urgency=medium"
        echo
        echo "  * Snapshot build of $(git rev-parse --short=12 HEAD) on the way to $base."
        echo
        echo " -- nicroute developers <nicroute@packages.invalid>  $(date -R)"
        # One file per entry, without the blank line that separates it from the next.
        awk -v dir="$work" '/^nicroute \(/ { n++; f = sprintf("%s/entry.%03d", dir, n); trailer = 0 }
            /^ -- / { print > f; trailer = 1; next }
            trailer && /^$/ { next }
            { print > f }' packaging/debian/changelog
        for entry in "$work"/entry.*; do
            v=$(sed -nE '1s/^nicroute \(([^)]+)\).*/\1/p' "$entry")
            if dpkg --compare-versions "$v" lt "$VERSION"; then
                echo
                cat "$entry"
            fi
        done
    } >"$src/debian/changelog.new"
    mv "$src/debian/changelog.new" "$src/debian/changelog"
fi
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign) >"$work/deb.log" 2>&1 || {
    tail -n 40 "$work/deb.log" >&2
    echo "build-packages: dpkg-buildpackage failed" >&2
    exit 1
}
arch=$(dpkg --print-architecture)
deb=$OUT/nicroute_${VERSION}_$arch.deb
mv "$work/nicroute_${VERSION}_$arch.deb" "$deb"
log "$(dpkg-deb -f "$deb" Package Version Depends | tr '\n' ' ')"

# lintian: every remaining tag must be one we explained.
command -v lintian >/dev/null || { echo "build-packages: lintian is not installed" >&2; exit 1; }
lrc=0
lintian --no-tag-display-limit --display-info "$deb" >"$work/lintian.txt" 2>&1 || lrc=$?
# 1: tags of severity error were found (judged below like any other tag); more: lintian failed.
if ((lrc > 1)); then
    cat "$work/lintian.txt" >&2
    echo "build-packages: lintian failed (exit $lrc)" >&2
    exit 1
fi
tags=$(sed -nE 's/^[EWIPX]: nicroute[^:]*: ([a-z0-9.+-]+).*/\1/p' "$work/lintian.txt" | sort -u || true)
expected=$(grep -vE '^(#|$)' packaging/debian/lintian-expected | awk '{ print $1 }' | sort -u || true)
unexplained=$(comm -23 <(printf '%s\n' "$tags" | sed '/^$/d') <(printf '%s\n' "$expected"))
if [[ -n $unexplained ]]; then
    cat "$work/lintian.txt" >&2
    echo "build-packages: lintian tags not explained in packaging/debian/lintian-expected: $(echo $unexplained)" >&2
    exit 1
fi
if [[ -n $tags ]]; then
    log "lintian: only explained tags: $(echo $tags) (packaging/debian/lintian-expected)"
else
    log "lintian: clean"
fi

# ---- .rpm ------------------------------------------------------------------------------------
log "nicroute $VERSION: .rpm"
rpmtop=$work/rpm
mkdir -p "$rpmtop"/{SOURCES,BUILD,BUILDROOT,RPMS,SPECS}
stage "$rpmtop/BUILD/stage" rpm
# rpm's brp-compress would gzip the man pages on Fedora; Debian's rpmbuild has no such step.
gzip -9n "$rpmtop"/BUILD/stage/usr/share/man/man*/*.[0-9]
cp packaging/rpm/nicroute.spec "$rpmtop/SPECS/nicroute.spec"
if [[ $VERSION != "$base" ]]; then
    # A snapshot build: a changelog entry of its own on top, as for the .deb.
    awk -v entry="* $(LC_ALL=C date -u '+%a %b %d %Y') nicroute developers <nicroute@packages.invalid> - ${VERSION//-/_}-1\n- Snapshot build of $(git rev-parse --short=12 HEAD) on the way to $base.\n" \
        '{ print } /^%changelog$/ { printf "%s\n", entry }' packaging/rpm/nicroute.spec >"$rpmtop/SPECS/nicroute.spec"
fi
rpmver=${VERSION//-/_}
macros=()
rpm --eval '%{?systemd_post:yes}' | grep -q yes || macros=(--load packaging/rpm/macros.systemd)
rpmbuild "${macros[@]}" --nodeps -bb "$rpmtop/SPECS/nicroute.spec" \
    --define "_topdir $rpmtop" --define "nicroute_version $rpmver" \
    --define "_binary_payload w6.zstdio" >"$work/rpm.log" 2>&1 || {
    tail -n 40 "$work/rpm.log" >&2
    echo "build-packages: rpmbuild failed" >&2
    exit 1
}
rpmfile=$(find "$rpmtop/RPMS" -name 'nicroute-*.rpm' | head -n 1)
rpmout=$OUT/$(basename "$rpmfile")
mv "$rpmfile" "$rpmout"

# rpmlint (Fedora's and SUSE's package checker; Debian packages it) on the .rpm and the spec:
# nothing but the findings packaging/rpm/rpmlint.toml filters, each with the reason it does not
# apply; anything new fails the build.
command -v rpmlint >/dev/null || { echo "build-packages: rpmlint is not installed" >&2; exit 1; }
rrc=0
(cd "$work" && rpmlint -c "$REPO/packaging/rpm/rpmlint.toml" "$rpmout" "$rpmtop/SPECS/nicroute.spec") >"$work/rpmlint.txt" 2>&1 || rrc=$?
rsummary=$(grep -E 'packages and [0-9]+ specfiles checked' "$work/rpmlint.txt" || true)
if ((rrc != 0)) || [[ ! $rsummary =~ \ 0\ errors,\ 0\ warnings ]]; then
    cat "$work/rpmlint.txt" >&2
    echo "build-packages: rpmlint found errors or warnings that packaging/rpm/rpmlint.toml does not explain (exit $rrc)" >&2
    exit 1
fi
log "rpmlint: ${rsummary## }"

# ---- the two file lists ----------------------------------------------------------------------
# Files (not directories) of each, the distributions' own paths mapped onto each other.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed -E 's|^\./|/|; s|\.gz$||' \
    | grep -vE '^/usr/share/doc/nicroute/(changelog(\.Debian)?|copyright)$' | sort >"$work/deb.files"
rpm -qlp "$rpmout" 2>/dev/null | sed -E 's|\.gz$||' \
    | sed -E 's|^/usr/share/zsh/site-functions/|/usr/share/zsh/vendor-completions/|' \
    | grep -vE '^/usr/share/doc/nicroute/LICENSE$|^/usr/lib/systemd/system-preset/' | sort >"$work/rpm.dirs-and-files"
# rpm -ql lists the %dir entries too: keep the files.
grep -vxE '/etc/nicroute|/etc/nicroute/nicroute\.conf\.d|/etc/iproute2/rt_protos\.d' "$work/rpm.dirs-and-files" >"$work/rpm.files"
if ! diff -u "$work/deb.files" "$work/rpm.files" >"$work/files.diff"; then
    cat "$work/files.diff" >&2
    echo "build-packages: the .rpm's file list differs from the .deb's" >&2
    exit 1
fi
log "file lists match: $(wc -l <"$work/deb.files") files (zsh completions, license file, the .rpm's preset: the distributions' own places)"
echo "$deb"
echo "$rpmout"
