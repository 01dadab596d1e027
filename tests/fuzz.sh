#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (not part of `make test`).
#   tests/fuzz.sh [SECONDS_PER_TARGET]   (default 600)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the
# stable toolchain build with the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/fuzz"
seconds="${1:-600}"
export RUSTC_BOOTSTRAP=1
for target in ${FUZZ_TARGETS:-script_metadata workflow_files manifests version_requirements values index_urls lockfiles}; do
    echo "== $target for ${seconds}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" --fuzz-dir . -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096
done
