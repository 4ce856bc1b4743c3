#!/usr/bin/env bash
# The short fuzzing run for CI: builds l2sw's fuzz targets with cargo-fuzz on stable Rust
# (installing cargo-fuzz if missing) and runs each for FUZZ_SECS seconds (default 20) from a
# copy of its committed seed corpus, so the checkout stays clean. A panic (a crash or a broken
# invariant), a timeout or running out of memory fails the run, with the fuzzer's report.
set -euo pipefail
source "$(dirname "$0")/common.sh"
secs="${FUZZ_SECS:-20}"

fuzz_build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for t in "${FUZZ_TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    cp "$FUZZ_DIR/corpus/$t"/seed-* "corpus/$t/"
    echo "== fuzz $t for ${secs}s =="
    if ! fuzz_run "$t" "corpus/$t" -max_total_time="$secs" >"$t.log" 2>&1; then
        tail -n 80 "$t.log"
        echo "fuzz: $t failed; reproduce with the input above:" \
            "cargo fuzz run --sanitizer none $t <artifact> (in dataplane/fuzz)" >&2
        exit 1
    fi
    fuzz_summary "$t" "$t.log"
done
echo "fuzz: every target ran ${secs}s without a failure"
