#!/usr/bin/env bash
# The fuzz targets in CI (see FUZZING.md): build them with cargo-fuzz on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z sanitizer/coverage flags cargo-fuzz passes),
# replay every seed, regression input and saved reproducer once, then fuzz each target
# briefly from its seeds. Any crash or broken invariant fails the step.
#
#   FUZZ_SECONDS=20 bash fuzz/ci.sh      # seconds of fuzzing per target (default 20)
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
targets=(token token_raw bearer jsonrpc challenge dpop)
# CI's brief runs use a dev build without a sanitizer: a third of the release+ASan build's
# time, with debug assertions and overflow checks on. The library forbids `unsafe`, so ASan
# adds little there; the long runs (FUZZING.md) use release builds, with and without ASan.
# FUZZ_BUILD="" selects cargo-fuzz's defaults (release, ASan).
read -r -a build <<<"${FUZZ_BUILD---dev --sanitizer none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
start=$SECONDS
cargo fuzz build "${build[@]}"
echo "fuzz build: $((SECONDS - start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
for target in "${targets[@]}"; do
    inputs=("seeds/$target")
    for dir in "regressions/$target" "artifacts/$target"; do
        if [ -d "$dir" ]; then inputs+=("$dir"); fi
    done
    # -runs=0: run every input once, and stop.
    if ! cargo fuzz run "${build[@]}" "$target" "${inputs[@]}" -- -runs=0 >"$work/$target.replay.log" 2>&1; then
        cat "$work/$target.replay.log" >&2
        exit 1
    fi
    grep -E "INITED" "$work/$target.replay.log" | sed "s/^/$target replay: /"
    mkdir -p "$work/$target"
    cargo fuzz run "${build[@]}" "$target" "$work/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>"$work/$target.log" || {
        cat "$work/$target.log" >&2
        exit 1
    }
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/$target.log" |
        sed "s/^/$target: /"
    passed=$((passed + 1))
done
echo "fuzz: $passed passed, 0 failed"
