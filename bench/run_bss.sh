#!/usr/bin/env bash
# run_bss.sh - BSS-generation speed, temper vs PyTorch, in one invocation.
#
# Builds bench_bss (CMake Release, build dir build-bench), runs bench_bss and torch_bss.py back to back (each
# after waiting for a quiet machine), prints the table
#   net | temper BSS/s | PyTorch BSS/s | ratio | mean steps (both) | crossed (both)
# and writes it with the settings, the machine information and the raw output to bench/results/bss.md.
# What is measured (both sides, see bench_bss.c): per batch of 256 synthetic inputs, base-sample selection
# with the teacher only (64 base samples), then 10 BSS steps (SAMPLE targets) and the teacher's logits on the
# results, on the Papernot/Carlini MNIST CNN teacher with random weights; BSS/s = 64 x batches / time.
#
# Environment knobs:
#   BENCH_SECONDS  seconds per timed run (default 2.5; 3 runs per side, median reported)
#   BENCH_REPEATS  timed runs per side (default 3)
#   BENCH_ETA      step size (default 0.001: no batch stops early on either side, so both do the same work;
#                  0.3 is the official value, see bench_bss.c)
#   BENCH_STEPS    steps (default 10)
#   PYTHON         interpreter with torch (default /usr/bin/python3)
#   BENCH_OUT      results file (default bench/results/bss.md)
#   BENCH_QUIET_WAIT  before each side, wait up to this many seconds (default 300, 0 = no wait) for 6 s in
#                  which other processes use < 10% of the machine
# The share of the machine's CPU time that OTHER processes used while each side ran is recorded.
# Smoke run (~15 s, numbers meaningless):
#   BENCH_SECONDS=0.2 BENCH_REPEATS=1 BENCH_QUIET_WAIT=0 BENCH_OUT=/tmp/smoke.md bench/run_bss.sh
# Exit status: non-zero if the build or either side fails or has no result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-bench"
OUT="${BENCH_OUT:-$ROOT/bench/results/bss.md}"
OUT_DIR="$(dirname "$OUT")"
SECS="${BENCH_SECONDS:-2.5}"
REPS="${BENCH_REPEATS:-3}"
ETA="${BENCH_ETA:-0.001}"
STEPS="${BENCH_STEPS:-10}"
PY="${PYTHON:-/usr/bin/python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

. "$ROOT/bench/bench_lib.sh"
bench_build bench_bss run_bss.sh

args=(--seconds "$SECS" --repeats "$REPS" --eta "$ETA" --steps "$STEPS" --batch 256 --base 64)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
start="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"

echo "== temper: bench_bss ${args[*]}" >&2
wait_quiet
if ! run_measured "$TMP/temper.out" "$BUILD/bench_bss" "${args[@]}"; then
    cat "$TMP/temper.out" >&2; echo "run_bss.sh: bench_bss failed" >&2; exit 1
fi
foreign_temper=$FOREIGN
cat "$TMP/temper.out" >&2
echo "(other processes used ${foreign_temper}% of the machine meanwhile)" >&2

echo "== PyTorch: torch_bss.py ${args[*]}" >&2
wait_quiet
if ! run_measured "$TMP/torch.out" "$PY" "$ROOT/bench/torch_bss.py" "${args[@]}"; then
    cat "$TMP/torch.out" >&2; echo "run_bss.sh: torch_bss.py failed" >&2; exit 1
fi
foreign_torch=$FOREIGN
cat "$TMP/torch.out" >&2
echo "(other processes used ${foreign_torch}% of the machine meanwhile)" >&2
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# field <file> <side> <key>: value of key=... on the side's "cnn" result line.
field() { awk -v s="$2" -v k="$3" '$1 == s && $2 == "cnn" {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$1"; }

table="$TMP/table.md"
{
    echo "| teacher | temper BSS/s | PyTorch BSS/s | ratio (temper/PyTorch) | mean steps (temper / PyTorch) | crossed (temper / PyTorch) |"
    echo "|---|---:|---:|---:|---:|---:|"
} >"$table"
status=0
t="$(field "$TMP/temper.out" temper bss_per_s)"
p="$(field "$TMP/torch.out" pytorch bss_per_s)"
if [ -z "$t" ] || [ -z "$p" ]; then
    echo "run_bss.sh: no result (temper '${t}', PyTorch '${p}')" >&2; status=1
else
    awk -v t="$t" -v p="$p" -v ts="$(field "$TMP/temper.out" temper mean_steps)" \
        -v ps="$(field "$TMP/torch.out" pytorch mean_steps)" -v tc="$(field "$TMP/temper.out" temper crossed)" \
        -v pc="$(field "$TMP/torch.out" pytorch crossed)" \
        'BEGIN { printf "| cnn (random init) | %.1f | %.1f | %.2f | %s / %s | %.1f%% / %.1f%% |\n", t, p, t / p, ts, ps, 100 * tc, 100 * pc }' >>"$table"
fi

commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo none)"
dirty="$(git -C "$ROOT" status --porcelain 2>/dev/null | head -c1 | wc -c)"
[ "$dirty" != 0 ] && commit="$commit (working tree has uncommitted changes)"
mkdir -p "$OUT_DIR"
{
    echo "# BSS generation speed: temper vs PyTorch"
    echo
    echo "Boundary-supporting samples per second on the Papernot/Carlini MNIST CNN teacher (random weights,"
    echo "eval mode): per batch of 256 synthetic inputs, base-sample selection with the teacher only (64 base"
    echo "samples), $STEPS BSS steps with eta $ETA (SAMPLE targets, per-sample stop masks, range [0, 1]) and the"
    echo "teacher's logits on the results; median of $REPS timed runs of ~${SECS} s each, warm-up excluded."
    echo "With eta 0.001 no batch stops early, so both sides run all $STEPS forward/backward passes (see"
    echo "bench/bench_bss.c); mean steps and crossed samples below differ only through the random weights."
    echo
    cat "$table"
    echo
    echo "- date: $start"
    echo "- command: BENCH_SECONDS=$SECS BENCH_REPEATS=$REPS BENCH_ETA=$ETA BENCH_STEPS=$STEPS bench/run_bss.sh"
    echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), nproc $(nproc)"
    echo "- load average (1/5/15 min) before: $load_before, after: $load_after"
    echo "- CPU time used by other processes while each side ran: temper ${foreign_temper}%," \
         "PyTorch ${foreign_torch}% of the machine (0% = quiet)"
    echo "- git commit: $commit"
    echo "- temper: $(grep '^temper-info' "$TMP/temper.out" | cut -d' ' -f2-)"
    echo "- OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}" \
         "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
    grep '^pytorch-info' "$TMP/torch.out" | sed 's/^pytorch-info /- PyTorch: /' || true
    echo
    echo "Raw output:"
    echo
    echo '```'
    grep -v -e '^temper-info' -e '^pytorch-info' "$TMP/temper.out" "$TMP/torch.out" | sed 's/^[^:]*://'
    echo '```'
} >"$TMP/result.md"
mv -f "$TMP/result.md" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"

cat "$table"
echo "(written to $OUT)"
exit "$status"
