#!/usr/bin/env bash
# check-layers.sh - sim/'s one-way layering (sim/README.md): a file may
# include headers of its own folder and of the folders below it, never of
# one above; and the other top-level libraries (policies, monitoring,
# reports, realbench) include nothing from sim/. Prints each offending
# #include as file:line and exits 1 if there is any.
#
# usage: scripts/check-layers.sh [ROOT]   (ROOT defaults to the repository)
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"

# lowest first; cli is the binary on top
LAYERS=(base scenario model flow control serve observe run cli)
declare -A rank home
for i in "${!LAYERS[@]}"; do
    rank[${LAYERS[$i]}]=$i
done
for dir in sim/*/; do
    layer=$(basename "$dir")
    [[ -n ${rank[$layer]+x} ]] || { echo "sim/$layer: a folder that is not a layer (add it to LAYERS)"; exit 1; }
    for h in "$dir"*.h; do
        [[ -e $h ]] && home[$(basename "$h")]=$layer
    done
done
if compgen -G "sim/*.[ch]" >/dev/null; then
    echo "sim/: files outside a layer folder:" sim/*.[ch]
    exit 1
fi

bad=0
for dir in sim/*/; do
    layer=$(basename "$dir")
    for f in "$dir"*.[ch]; do
        while IFS=: read -r line hdr; do
            to=${home[$hdr]:-}
            [[ -z $to ]] && continue   # another library's header, or the system's
            if (( ${rank[$to]} > ${rank[$layer]} )); then
                echo "$f:$line: includes $hdr from sim/$to/, a layer above sim/$layer/"
                bad=1
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
                 sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
    done
done
for lib in policies monitoring reports realbench; do
    while IFS=: read -r f line hdr; do
        if [[ -n ${home[$(basename "$hdr")]:-} ]]; then
            echo "$f:$line: $lib/ includes $hdr from sim/"
            bad=1
        fi
    done < <(grep -rn --include='*.[ch]' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$lib" |
             sed -E 's/^([^:]+):([0-9]+):.*"([^"]+)".*/\1:\2:\3/')
done
exit $bad
