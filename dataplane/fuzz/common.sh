# Shared by ci.sh and run-long.sh (sourced, not run): how l2sw's fuzz targets are built and run.
#
# cargo-fuzz runs on stable Rust with `--sanitizer none`: it then passes rustc only stable flags
# (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, -Cdebug-assertions, --cfg
# fuzzing), so libFuzzer gets its coverage feedback and overflow checks stay on. No
# RUSTC_BOOTSTRAP is needed. AddressSanitizer (-Zsanitizer=address) would need nightly; the code
# under test has no unsafe (only port/sys has, which no target reaches).

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FUZZ_TARGETS=(parse process control)
CARGO_FUZZ_VERSION=0.13.2

# Installs cargo-fuzz if missing, checks the fuzz crate's lock file and builds every target.
fuzz_build() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
    fi
    cargo fetch --locked --manifest-path "$FUZZ_DIR/Cargo.toml"
    cargo fuzz build --fuzz-dir "$FUZZ_DIR" --sanitizer none
}

# fuzz_run TARGET CORPUS_DIR LIBFUZZER_ARGS...: one libFuzzer job, in one process (-jobs=1
# -workers=1, as this 2-core machine is shared; libFuzzer then writes fuzz-0.log into the
# current directory and copies it to stderr at the end). A target's dictionary, if it has one,
# is used.
fuzz_run() {
    local target=$1 corpus=$2
    shift 2
    local dict=()
    if [[ -f "$FUZZ_DIR/$target.dict" ]]; then
        dict=("-dict=$FUZZ_DIR/$target.dict")
    fi
    cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer none "$target" "$corpus" -- \
        -jobs=1 -workers=1 "${dict[@]}" "$@"
}

# fuzz_summary TARGET LOG: the run's executions, time and final coverage, on one line.
fuzz_summary() {
    local target=$1 log=$2 done_line cov
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
    echo "$target: ${done_line:-no summary (see $log)}; ${cov:-no coverage line}"
}
