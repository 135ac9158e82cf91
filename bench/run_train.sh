#!/usr/bin/env bash
# run_train.sh - training-speed benchmark, temper vs PyTorch, in one invocation.
#
# Builds bench_train (CMake Release, build dir build-bench), runs it, then runs torch_train.py (which
# sweeps PyTorch's thread settings and measures each net with its fastest one), prints the table
#   net | temper samples/s | PyTorch samples/s | ratio
# and writes it with the machine information and the raw output to bench/results/train.md.
#
# Environment knobs:
#   BENCH_SECONDS  seconds per timed run (default 2.5; 3 runs per net per framework, median reported)
#   BENCH_REPEATS  timed runs per net (default 3)
#   BENCH_NETS     nets to run (default "mlp800 mlp1200 cnn")
#   TORCH_FIXED=1  skip PyTorch's thread-setting sweep (baseline set_num_threads(2), mkldnn on)
#   PYTHON         interpreter with torch (default /usr/bin/python3)
#   BENCH_CORETYPE native: unset OPENBLAS_CORETYPE so OpenBLAS picks its kernels for this CPU; any other
#                  non-empty value: export OPENBLAS_CORETYPE=<value> (both sides share the OpenBLAS)
#   BENCH_TEACHER  distillation speed: each step also runs this frozen teacher net and uses the KD loss
#                  (T 20, alpha 0.9, T^2) on both sides; default results file bench/results/distill.md.
#                  The issue's case: BENCH_TEACHER=mlp1200 BENCH_NETS=mlp800 bench/run_train.sh
#   BENCH_OUT      results file (default bench/results/train.md)
#   BENCH_QUIET_WAIT  before each side, wait up to this many seconds (default 300, 0 = no wait) for 6 s
#                  in which other processes use < 10% of the machine
# The share of the machine's CPU time that OTHER processes used while each side ran is measured
# (from /proc/stat minus our own children's CPU time) and written next to the results.
# Exit status: non-zero if the build or either side fails or a net has no result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-bench"
TEACHER="${BENCH_TEACHER:-}"
if [ -n "$TEACHER" ]; then OUT="${BENCH_OUT:-$ROOT/bench/results/distill.md}"; else OUT="${BENCH_OUT:-$ROOT/bench/results/train.md}"; fi
OUT_DIR="$(dirname "$OUT")"
SECS="${BENCH_SECONDS:-2.5}"
REPS="${BENCH_REPEATS:-3}"
NETS="${BENCH_NETS:-mlp800 mlp1200 cnn}"
PY="${PYTHON:-/usr/bin/python3}"
case "${BENCH_CORETYPE:-}" in
    "") ;;
    native) unset OPENBLAS_CORETYPE ;;
    *) export OPENBLAS_CORETYPE="$BENCH_CORETYPE" ;;
esac
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

. "$ROOT/bench/bench_lib.sh"
bench_build bench_train run_train.sh

net_args=()
for n in $NETS; do net_args+=(--net "$n"); done
torch_args=(--seconds "$SECS" --repeats "$REPS" --nets $NETS)
if [ "${TORCH_FIXED:-0}" = 1 ]; then torch_args+=(--fixed); fi
if [ -n "$TEACHER" ]; then net_args+=(--teacher "$TEACHER"); torch_args+=(--teacher "$TEACHER"); fi

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
start="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"

echo "== temper: bench_train ${net_args[*]} --seconds $SECS --repeats $REPS" >&2
wait_quiet
if ! run_measured "$TMP/temper.out" "$BUILD/bench_train" "${net_args[@]}" --seconds "$SECS" --repeats "$REPS"; then
    cat "$TMP/temper.out" >&2; echo "run_train.sh: bench_train failed" >&2; exit 1
fi
foreign_temper=$FOREIGN
cat "$TMP/temper.out" >&2
echo "(other processes used ${foreign_temper}% of the machine meanwhile)" >&2

echo "== PyTorch: torch_train.py ${torch_args[*]}" >&2
wait_quiet
if ! run_measured "$TMP/torch.out" "$PY" "$ROOT/bench/torch_train.py" "${torch_args[@]}"; then
    cat "$TMP/torch.out" >&2; echo "run_train.sh: torch_train.py failed" >&2; exit 1
fi
foreign_torch=$FOREIGN
cat "$TMP/torch.out" >&2
echo "(other processes used ${foreign_torch}% of the machine meanwhile)" >&2
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# field <file> <side> <net> <key>: value of key=... on the result line of net.
field() { awk -v s="$2" -v n="$3" -v k="$4" '$1 == s && $2 == n {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$1"; }

table="$TMP/table.md"
{
    echo "| ${TEACHER:+teacher-}net | temper samples/s | PyTorch samples/s | ratio (temper/PyTorch) | PyTorch setting |"
    echo "|---|---:|---:|---:|---|"
} >"$table"
status=0
for n in $NETS; do
    [ -n "$TEACHER" ] && n="$TEACHER-$n"
    t="$(field "$TMP/temper.out" temper "$n" samples_per_s)"
    p="$(field "$TMP/torch.out" pytorch "$n" samples_per_s)"
    s="$(field "$TMP/torch.out" pytorch "$n" setting)"
    if [ -z "$t" ] || [ -z "$p" ]; then
        echo "run_train.sh: no result for $n (temper '${t}', PyTorch '${p}')" >&2; status=1; continue
    fi
    awk -v n="$n" -v t="$t" -v p="$p" -v s="$s" \
        'BEGIN { printf "| %s | %.1f | %.1f | %.2f | %s |\n", n, t, p, t / p, s }' >>"$table"
done

commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo none)"
dirty="$(git -C "$ROOT" status --porcelain 2>/dev/null | head -c1 | wc -c)"
[ "$dirty" != 0 ] && commit="$commit (working tree has uncommitted changes)"
mkdir -p "$OUT_DIR"
{
    if [ -n "$TEACHER" ]; then
        echo "# Distillation speed: temper vs PyTorch"
        echo
        echo "Batch 128, synthetic data; per batch: the frozen teacher's forward pass (eval mode), the student's"
        echo "forward + KD loss (T 20, alpha 0.9, T^2; soft labels on the fly) + backward + SGD momentum 0.9 step;"
    else
        echo "# Training speed: temper vs PyTorch"
        echo
        echo "Batch 128, synthetic data, forward + CE (T=1) + backward + SGD momentum 0.9 step;"
    fi
    echo "median of $REPS timed runs of ~${SECS} s each per net and framework, warm-up excluded."
    echo
    cat "$table"
    echo
    echo "- date: $start"
    echo "- command: BENCH_SECONDS=$SECS BENCH_REPEATS=$REPS TORCH_FIXED=${TORCH_FIXED:-0} BENCH_NETS=\"$NETS\"" \
         "BENCH_TEACHER=$TEACHER" \
         "BENCH_CORETYPE=${BENCH_CORETYPE:-} bench/run_train.sh"
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
    cat "$TMP/temper.out" "$TMP/torch.out"
    echo '```'
} >"$TMP/result.md"
mv -f "$TMP/result.md" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"

cat "$table"
echo "(written to $OUT)"
exit "$status"
