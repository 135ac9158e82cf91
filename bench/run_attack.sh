#!/usr/bin/env bash
# run_attack.sh - attack-speed benchmark, temper vs PyTorch, in one invocation.
#
# Builds bench_attack (CMake Release, build dir build-bench), then for every model and attack runs
# bench_attack and torch_attack.py back to back (each after waiting for a quiet machine), prints the table
#   model | attack | runs | temper adv/s | PyTorch adv/s | ratio | success rates (both) | target
# and writes it with the settings, the machine information and the raw output to bench/results/attack.md.
#
# Environment knobs:
#   BENCH_MODELS   "label=path ..." (default: cnn=results/mnist_cnn/model.safetensors
#                  mlp1200=results/mnist_mlp_1200/model.safetensors, relative to the repository)
#   BENCH_ATTACKS  attacks to run (default "fgsm pgd jsma cw")
#   BENCH_REPEATS  timed runs of each workload (default 3, median reported)
#   BENCH_FGSM_N, BENCH_PGD_N         images attacked by fgsm / pgd (default 1000 / 512)
#   BENCH_JSMA_IMAGES, BENCH_CW_IMAGES images x 9 targets for jsma / cw (default 100 / 32)
#   TORCH_ARGS     extra arguments for torch_attack.py (e.g. "--jsma-beta backward")
#   PYTHON         interpreter with torch (default /usr/bin/python3)
#   BENCH_OUT      results file (default bench/results/attack.md)
#   BENCH_QUIET_WAIT  before each measurement, wait up to this many seconds (default 300, 0 = no wait)
#                  for 6 s in which other processes use < 10% of the machine
# The share of the machine's CPU time that OTHER processes used during each measurement is recorded.
# Smoke run (~1 min, numbers meaningless):
#   BENCH_REPEATS=1 BENCH_FGSM_N=128 BENCH_PGD_N=128 BENCH_JSMA_IMAGES=2 BENCH_CW_IMAGES=2 \
#   BENCH_QUIET_WAIT=0 BENCH_OUT=/tmp/smoke.md bench/run_attack.sh
# Exit status: non-zero if the build or any measurement fails or has no result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-bench"
OUT="${BENCH_OUT:-$ROOT/bench/results/attack.md}"
OUT_DIR="$(dirname "$OUT")"
REPS="${BENCH_REPEATS:-3}"
MODELS="${BENCH_MODELS:-cnn=$ROOT/results/mnist_cnn/model.safetensors mlp1200=$ROOT/results/mnist_mlp_1200/model.safetensors}"
ATTACKS="${BENCH_ATTACKS:-fgsm pgd jsma cw}"
PY="${PYTHON:-/usr/bin/python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# size_args <attack>: the workload, identical on both sides.
size_args() {
    case "$1" in
        fgsm) echo "--n ${BENCH_FGSM_N:-1000}" ;;
        pgd) echo "--n ${BENCH_PGD_N:-512}" ;;
        jsma) echo "--images ${BENCH_JSMA_IMAGES:-100}" ;;
        cw) echo "--images ${BENCH_CW_IMAGES:-32}" ;;
        *) echo "run_attack.sh: unknown attack $1" >&2; return 1 ;;
    esac
}
# Setting of each attack for the table (the defaults of bench_attack.c and torch_attack.py).
setting() {
    case "$1" in
        fgsm) echo "L-inf eps 0.3, CE" ;;
        pgd) echo "L-inf eps 0.3, step 0.01, 40 iters, random start, 1 restart, CE, per-sample early stop" ;;
        jsma) echo "targeted x 9 targets, softmax T=1, gamma 0.145 (<= 56 pair steps), theta +1" ;;
        cw) echo "L2, targeted x 9 targets, REDUCED: 1 search step x 100 Adam iters (lr 0.1), c = 1, no abort-early" ;;
    esac
}
# Issue targets (temper/PyTorch) on the CNN.
target() {
    case "$1:$2" in
        cnn:pgd) echo 2 ;;
        cnn:jsma) echo 5 ;;
        *) echo "" ;;
    esac
}

. "$ROOT/bench/bench_lib.sh"
bench_build bench_attack run_attack.sh
# field <file> <side> <model> <attack> <key>: value of key=... on the result line.
field() { awk -v s="$2" -v m="$3" -v a="$4" -v k="$5" '$1 == s && $2 == m && $3 == a {
    for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$1"; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
start="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
: >"$TMP/raw.out"
: >"$TMP/foreign.txt"
status=0
for spec in $MODELS; do
    label="${spec%%=*}" model="${spec#*=}"
    [ -f "$model" ] || { echo "run_attack.sh: no model file $model" >&2; exit 1; }
    for atk in $ATTACKS; do
        sz="$(size_args "$atk")"
        echo "== $label $atk: temper" >&2
        wait_quiet
        if ! run_measured "$TMP/t.out" "$BUILD/bench_attack" --model "$model" --attack "$atk" --name "$label" \
            --repeats "$REPS" $sz; then
            cat "$TMP/t.out" >&2; echo "run_attack.sh: bench_attack $label $atk failed" >&2; exit 1
        fi
        ft=$FOREIGN
        cat "$TMP/t.out" >&2; cat "$TMP/t.out" >>"$TMP/raw.out"
        echo "== $label $atk: PyTorch" >&2
        wait_quiet
        # shellcheck disable=SC2086
        if ! run_measured "$TMP/p.out" "$PY" "$ROOT/bench/torch_attack.py" --model "$model" --attack "$atk" \
            --name "$label" --repeats "$REPS" $sz ${TORCH_ARGS:-}; then
            cat "$TMP/p.out" >&2; echo "run_attack.sh: torch_attack.py $label $atk failed" >&2; exit 1
        fi
        fp=$FOREIGN
        cat "$TMP/p.out" >&2; cat "$TMP/p.out" >>"$TMP/raw.out"
        echo "$label $atk $ft $fp" >>"$TMP/foreign.txt"
        echo "(other processes used ${ft}% / ${fp}% of the machine during temper / PyTorch)" >&2
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

table="$TMP/table.md"
details="$TMP/details.md"
{
    echo "| model | attack | runs | temper adv/s | PyTorch adv/s | ratio (temper/PyTorch) | temper success | PyTorch success | issue target |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
} >"$table"
{
    echo "| model | attack | side | mean iters | mean L0 | mean L2 | mean Linf | clean right | other processes' CPU |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
} >"$details"
R="$TMP/raw.out"
while read -r label atk ft fp; do
    t="$(field "$R" temper "$label" "$atk" adv_per_s)"
    p="$(field "$R" pytorch "$label" "$atk" adv_per_s)"
    if [ -z "$t" ] || [ -z "$p" ]; then
        echo "run_attack.sh: no result for $label $atk (temper '${t}', PyTorch '${p}')" >&2; status=1; continue
    fi
    n="$(field "$R" temper "$label" "$atk" n)"
    ts="$(field "$R" temper "$label" "$atk" success)" ps="$(field "$R" pytorch "$label" "$atk" success)"
    tg="$(target "$label" "$atk")"
    awk -v l="$label" -v a="$atk" -v n="$n" -v t="$t" -v p="$p" -v ts="$ts" -v ps="$ps" -v tg="$tg" 'BEGIN {
        r = t / p; g = tg == "" ? "" : (r >= tg ? sprintf(">= %dx: met", tg) : sprintf(">= %dx: missed by %.1f%%", tg, 100 * (1 - r / tg)))
        printf "| %s | %s | %d | %.1f | %.1f | %.2f | %.1f%% | %.1f%% | %s |\n", l, a, n, t, p, r, 100 * ts, 100 * ps, g }' >>"$table"
    for side in temper pytorch; do
        f="$ft"; [ "$side" = pytorch ] && f="$fp"
        echo "| $label | $atk | $side | $(field "$R" $side "$label" "$atk" mean_iters) | $(field "$R" $side "$label" "$atk" mean_l0) |" \
             "$(field "$R" $side "$label" "$atk" mean_l2) | $(field "$R" $side "$label" "$atk" mean_linf) |" \
             "$(field "$R" $side "$label" "$atk" n_correct)/$n | ${f}% |" >>"$details"
    done
done <"$TMP/foreign.txt"

commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo none)"
dirty="$(git -C "$ROOT" status --porcelain 2>/dev/null | head -c1 | wc -c)"
[ "$dirty" != 0 ] && commit="$commit (working tree has uncommitted changes)"
mkdir -p "$OUT_DIR"
{
    echo "# Attack speed: temper vs PyTorch"
    echo
    echo "Adversarial examples per second (batches of 128, first MNIST test images, median of $REPS timed runs"
    echo "of the whole workload after a warm-up; the time includes the prediction on x_adv). Success rates are"
    echo "over the runs whose clean prediction is right (targeted: reaching the target)."
    echo
    cat "$table"
    echo
    echo "Settings (identical on both sides; see bench/README.md):"
    echo
    for atk in $ATTACKS; do echo "- $atk: $(setting "$atk"); workload $(size_args "$atk")"; done
    echo
    echo "Per side (means over the runs with a right clean prediction; distortions over the successes):"
    echo
    cat "$details"
    echo
    echo "- date: $start"
    echo "- command: BENCH_REPEATS=$REPS BENCH_ATTACKS=\"$ATTACKS\" TORCH_ARGS=\"${TORCH_ARGS:-}\" bench/run_attack.sh"
    echo "- models: $MODELS"
    echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), nproc $(nproc)"
    echo "- load average (1/5/15 min) before: $load_before, after: $load_after"
    echo "- git commit: $commit"
    echo "- temper: $(grep -m1 '^temper-info' "$R" | cut -d' ' -f2-)"
    echo "- OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}" \
         "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
    grep '^pytorch-info' "$R" | sort -u | sed 's/^pytorch-info /- PyTorch: /' || true
    echo
    echo "Raw output:"
    echo
    echo '```'
    grep -v -e '^temper-info' -e '^pytorch-info' "$R"
    echo '```'
} >"$TMP/attack.md"
mv -f "$TMP/attack.md" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"

cat "$table"
echo "(written to $OUT)"
exit "$status"
