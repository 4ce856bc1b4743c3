#!/usr/bin/env bash
# The long fuzzing runs: each target in turn (never two at once) for RUNS executions (default
# 10,000,000) or SECS seconds (default 1800), whichever comes first, on its corpus under
# corpus/<target>/ (the committed seeds plus whatever earlier runs added there; additions are
# git-ignored). Full logs go to long-runs/<target>.log; the last lines say, per target, the
# executions, the time and the final coverage (cov: edges, ft: features). Targets to run may be
# named as arguments (default: all).
set -euo pipefail
source "$(dirname "$0")/common.sh"
runs="${RUNS:-10000000}"
secs="${SECS:-1800}"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${FUZZ_TARGETS[@]}")
fi

fuzz_build
mkdir -p "$FUZZ_DIR/long-runs"
cd "$FUZZ_DIR/long-runs"
status=0
summaries=()
for t in "${targets[@]}"; do
    echo "== $t: up to $runs executions or ${secs}s =="
    if ! fuzz_run "$t" "$FUZZ_DIR/corpus/$t" -runs="$runs" -max_total_time="$secs" \
        >"$t.log" 2>&1; then
        tail -n 80 "$t.log"
        status=1
    fi
    summaries+=("$(fuzz_summary "$t" "$t.log")")
done
printf '%s\n' "${summaries[@]}"
exit "$status"
