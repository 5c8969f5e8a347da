#!/usr/bin/env bash
# Regenerates the man pages (docs/man) and shell completions (completions/) from the
# executables' argument definitions (swift-argument-parser). With --check, fails when the
# committed files differ from what the current code generates.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH

# The date printed in the man pages: the release date, changed with the version.
DATE=2026-11-23
CHECK=${1:-}

out=docs/man
comp=completions
if [[ $CHECK == --check ]]; then
    out=$(mktemp -d)
    comp=$(mktemp -d)
    trap 'rm -rf "$out" "$comp"' EXIT
fi
mkdir -p "$out" "$comp"

swift build --product nicrouted >/dev/null
swift build --product nicroutectl >/dev/null
bin=$(swift build --show-bin-path)
tool=$(find .build -name generate-manual-tool -type f -perm -u+x | head -n 1)
if [[ ! -x $tool ]]; then
    # swift-argument-parser's tool is built by its plugin (it is not a product); the plugin's
    # own pages (every executable, one section) are thrown away and the tool is used directly.
    scratch=$(mktemp -d)
    swift package --allow-writing-to-package-directory generate-manual --configuration debug \
        --output-directory "$scratch" >/dev/null
    rm -rf "$scratch"
    tool=$(find .build -name generate-manual-tool -type f -perm -u+x | head -n 1)
fi
[[ -x $tool ]] || { echo "generate-docs: generate-manual-tool not built" >&2; exit 1; }

"$tool" "$bin/nicroutectl" --section 1 --output-directory "$out" --date "$DATE" --authors "nicroute developers"
"$tool" "$bin/nicrouted" --section 8 --output-directory "$out" --date "$DATE" --authors "nicroute developers"
# A blank line in a discussion becomes an empty input line, which groff warns about (lintian:
# groff-message): mdoc's paragraph break is .Pp.
sed -i 's/^$/.Pp/' "$out/nicroutectl.1" "$out/nicrouted.8"
for shell in bash zsh fish; do
    "$bin/nicroutectl" --generate-completion-script "$shell" >"$comp/nicroutectl.$shell"
    "$bin/nicrouted" --generate-completion-script "$shell" >"$comp/nicrouted.$shell"
done

if [[ $CHECK == --check ]]; then
    # docs/man also holds hand-written pages (nicroute.conf.5): only the generated ones count.
    stale=0
    for page in "$out"/*; do diff -u "docs/man/${page##*/}" "$page" || stale=1; done
    if ((stale == 0)) && diff -ru completions "$comp"; then
        echo "generate-docs: man pages and completions are up to date"
    else
        echo "generate-docs: man pages or completions are stale: run scripts/generate-docs.sh" >&2
        exit 1
    fi
fi
