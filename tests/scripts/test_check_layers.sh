#!/usr/bin/env bash
# test_check_layers.sh - scripts/check-layers.sh passes on the tree as it
# is, and fails, naming the file and line, on a copy where a flow/ file
# includes an observe/ header, a model/ header includes control.h, and
# policies/ includes a sim/ header.
set -euo pipefail
SRC=${1:?usage: test_check_layers.sh SOURCE_DIR}
CHECK=$SRC/scripts/check-layers.sh

"$CHECK" "$SRC"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$SRC/sim" "$SRC/policies" "$SRC/monitoring" "$SRC/reports" "$SRC/realbench" "$tmp/"
"$CHECK" "$tmp"

echo '#include "observe.h"' >> "$tmp/sim/flow/request.c"
echo '#include "control.h"' >> "$tmp/sim/model/model.h"
echo '#include "model.h"' >> "$tmp/policies/lb.h"
if out=$("$CHECK" "$tmp"); then
    echo "check-layers passed a tree with upward includes"; exit 1
fi
lines=$(wc -l <"$tmp/sim/flow/request.c")
grep -qx "sim/flow/request.c:$lines: includes observe.h from sim/observe/, a layer above sim/flow/" <<<"$out"
lines=$(wc -l <"$tmp/sim/model/model.h")
grep -qx "sim/model/model.h:$lines: includes control.h from sim/control/, a layer above sim/model/" <<<"$out"
grep -q "^policies/lb.h:[0-9]*: policies/ includes model.h from sim/" <<<"$out"
[[ $(wc -l <<<"$out") -eq 3 ]] || { echo "expected 3 findings, got:"; echo "$out"; exit 1; }
echo "check-layers: ok"
