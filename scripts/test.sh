#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite:
#   1. Release build, ctest with OMP_NUM_THREADS=2 and again with 1 (results must not depend on threads);
#   2. ASan + UBSan build, ctest.
# The PyTorch cross-checks run because setup --test installs python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

status=0
echo "== tests, Release, OMP_NUM_THREADS=2"
OMP_NUM_THREADS=2 ctest --test-dir build --output-on-failure -j1 || status=1
echo "== tests, Release, OMP_NUM_THREADS=1"
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j2 || status=1

echo "== tests, ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTEMPER_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" > build-asan/build.log 2>&1 || { tail -n 60 build-asan/build.log >&2; echo "build failed (build-asan/build.log)" >&2; exit 1; }
# OpenMP's runtime keeps thread pools alive at exit; LeakSanitizer would report them.
ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=2 ctest --test-dir build-asan --output-on-failure -j1 -E '^test_torch' \
  || status=1

if ((status)); then echo "TESTS FAILED"; else echo "ALL TESTS PASSED"; fi
exit $status
