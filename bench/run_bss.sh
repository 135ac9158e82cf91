#!/usr/bin/env bash
# run_bss.sh - BSS-generation speed, temper vs PyTorch, in one invocation.
#
# Builds bench_bss (CMake Release, build dir build-bench), runs bench_bss and torch_bss.py back to back (each
# after waiting for a quiet machine), prints the table
#   teacher | temper BSS/s | PyTorch BSS/s | ratio | mean steps (both) | crossed (both)
# and writes it with the settings, the machine information and the raw output to bench/results/bss.md.
# What is measured (both sides, see bench_bss.c): per batch of 256 inputs, base-sample selection with the
# teacher only (64 base samples), then at most 10 BSS steps (SAMPLE targets) and the teacher's logits on the
# results, on the Papernot/Carlini MNIST CNN teacher; BSS/s = 64 x batches / time.
#   - default: random weights, synthetic inputs, eta 0.001 (hardly any sample crosses: both sides do all steps);
#   - BENCH_MODEL=FILE (e.g. results/mnist_cnn/model.safetensors): the realistic case, the trained teacher on
#     the first 8 x 256 MNIST training images with their true labels, eta 0.3 (the official value); most
#     samples cross within a few steps. temper then evaluates only the still-active rows while the official
#     code keeps all 64 in the batch, so PyTorch runs twice, official (torch_bss.py) and compacted like temper
#     (torch_bss.py --compact), and the table has both columns and both ratios. Results file
#     bench/results/bss_trained.md.
#
# Environment knobs:
#   BENCH_SECONDS  seconds per timed run (default 2.5; 3 runs per side, median reported)
#   BENCH_REPEATS  timed runs per side (default 3)
#   BENCH_MODEL    trained teacher (a temper model file; relative paths from the current folder, else from
#                  the repository); unset: the random CNN on synthetic inputs
#   BENCH_ETA      step size (default 0.001, with BENCH_MODEL 0.3: see above and bench_bss.c)
#   BENCH_STEPS    steps (default 10)
#   BENCH_RANGE    lo,hi pixel range (default: the model's temper.range metadata, else [0, 1] for synthetic
#                  inputs)
#   BENCH_POLICY   BSS targets: sample (default, official) or second (deterministic: the same weights and data
#                  give the same mean steps and crossings on all sides up to float rounding)
#   BENCH_COMPACT  1: also run torch_bss.py --compact (default 1 with BENCH_MODEL, else 0)
#   PYTHON         interpreter with torch (default /usr/bin/python3)
#   BENCH_OUT      results file (default bench/results/bss.md, with BENCH_MODEL bench/results/bss_trained.md)
#   BENCH_QUIET_WAIT  before each side, wait up to this many seconds (default 300, 0 = no wait) for 6 s in
#                  which other processes use < 10% of the machine
# The share of the machine's CPU time that OTHER processes used while each side ran is recorded.
# Smoke run (~15 s, numbers meaningless):
#   BENCH_SECONDS=0.2 BENCH_REPEATS=1 BENCH_QUIET_WAIT=0 BENCH_OUT=/tmp/smoke.md bench/run_bss.sh
# The realistic case:
#   BENCH_MODEL=results/mnist_cnn/model.safetensors bench/run_bss.sh
# Exit status: non-zero if the build or either side fails or has no result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-bench"
MODEL_NAME="${BENCH_MODEL:-}"
MODEL=""
if [ -n "$MODEL_NAME" ]; then
    if [ -f "$MODEL_NAME" ]; then MODEL="$(cd "$(dirname "$MODEL_NAME")" && pwd)/$(basename "$MODEL_NAME")"
    elif [ -f "$ROOT/$MODEL_NAME" ]; then MODEL="$ROOT/$MODEL_NAME"
    else echo "run_bss.sh: BENCH_MODEL '$MODEL_NAME': no such file" >&2; exit 1; fi
    OUT="${BENCH_OUT:-$ROOT/bench/results/bss_trained.md}"
    ETA="${BENCH_ETA:-0.3}"
    COMPACT="${BENCH_COMPACT:-1}"
else
    OUT="${BENCH_OUT:-$ROOT/bench/results/bss.md}"
    ETA="${BENCH_ETA:-0.001}"
    COMPACT="${BENCH_COMPACT:-0}"
fi
OUT_DIR="$(dirname "$OUT")"
SECS="${BENCH_SECONDS:-2.5}"
REPS="${BENCH_REPEATS:-3}"
STEPS="${BENCH_STEPS:-10}"
POLICY="${BENCH_POLICY:-sample}"
RANGE="${BENCH_RANGE:-}"
PY="${PYTHON:-/usr/bin/python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

. "$ROOT/bench/bench_lib.sh"
bench_build bench_bss run_bss.sh

args=(--seconds "$SECS" --repeats "$REPS" --eta "$ETA" --steps "$STEPS" --batch 256 --base 64 --policy "$POLICY")
[ -n "$MODEL" ] && args+=(--model "$MODEL" --data mnist)
[ -n "$RANGE" ] && args+=(--range "$RANGE")
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
foreign_compact=""
if [ "$COMPACT" = 1 ]; then
    echo "== PyTorch, compacted like temper: torch_bss.py ${args[*]} --compact" >&2
    wait_quiet
    if ! run_measured "$TMP/compact.out" "$PY" "$ROOT/bench/torch_bss.py" "${args[@]}" --compact; then
        cat "$TMP/compact.out" >&2; echo "run_bss.sh: torch_bss.py --compact failed" >&2; exit 1
    fi
    foreign_compact=$FOREIGN
    cat "$TMP/compact.out" >&2
    echo "(other processes used ${foreign_compact}% of the machine meanwhile)" >&2
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# field <file> <side> <key>: value of key=... on the side's "cnn" result line.
field() { awk -v s="$2" -v k="$3" '$1 == s && $2 == "cnn" {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$1"; }

table="$TMP/table.md"
if [ -n "$MODEL" ]; then teacher="cnn (trained: $MODEL_NAME), MNIST"; else teacher="cnn (random init), synthetic"; fi
status=0
t="$(field "$TMP/temper.out" temper bss_per_s)"
p="$(field "$TMP/torch.out" pytorch bss_per_s)"
c=""
[ "$COMPACT" = 1 ] && c="$(field "$TMP/compact.out" pytorch bss_per_s)"
range="$(field "$TMP/temper.out" temper range)"
if [ -z "$t" ] || [ -z "$p" ] || { [ "$COMPACT" = 1 ] && [ -z "$c" ]; }; then
    echo "run_bss.sh: no result (temper '${t}', PyTorch '${p}', PyTorch compacted '${c}')" >&2; status=1
    : >"$table"
elif [ "$COMPACT" = 1 ]; then
    {
        echo "| teacher, data | temper BSS/s | PyTorch official BSS/s | PyTorch compacted BSS/s | temper / official | temper / compacted | mean steps (temper / official / compacted) | crossed (temper / official / compacted) |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    } >"$table"
    awk -v n="$teacher" -v t="$t" -v p="$p" -v c="$c" \
        -v ts="$(field "$TMP/temper.out" temper mean_steps)" -v ps="$(field "$TMP/torch.out" pytorch mean_steps)" \
        -v cs="$(field "$TMP/compact.out" pytorch mean_steps)" -v tc="$(field "$TMP/temper.out" temper crossed)" \
        -v pc="$(field "$TMP/torch.out" pytorch crossed)" -v cc="$(field "$TMP/compact.out" pytorch crossed)" \
        'BEGIN { printf "| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %s / %s / %s | %.1f%% / %.1f%% / %.1f%% |\n",
                 n, t, p, c, t / p, t / c, ts, ps, cs, 100 * tc, 100 * pc, 100 * cc }' >>"$table"
else
    {
        echo "| teacher, data | temper BSS/s | PyTorch BSS/s | ratio (temper/PyTorch) | mean steps (temper / PyTorch) | crossed (temper / PyTorch) |"
        echo "|---|---:|---:|---:|---:|---:|"
    } >"$table"
    awk -v n="$teacher" -v t="$t" -v p="$p" -v ts="$(field "$TMP/temper.out" temper mean_steps)" \
        -v ps="$(field "$TMP/torch.out" pytorch mean_steps)" -v tc="$(field "$TMP/temper.out" temper crossed)" \
        -v pc="$(field "$TMP/torch.out" pytorch crossed)" \
        'BEGIN { printf "| %s | %.1f | %.1f | %.2f | %s / %s | %.1f%% / %.1f%% |\n", n, t, p, t / p, ts, ps, 100 * tc, 100 * pc }' >>"$table"
fi

commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo none)"
dirty="$({ git -C "$ROOT" status --porcelain 2>/dev/null || true; } | head -c1 | wc -c)"
[ "$dirty" != 0 ] && commit="$commit (working tree has uncommitted changes)"
envs="BENCH_SECONDS=$SECS BENCH_REPEATS=$REPS BENCH_ETA=$ETA BENCH_STEPS=$STEPS BENCH_POLICY=$POLICY"
[ -n "$MODEL" ] && envs="BENCH_MODEL=$MODEL_NAME $envs"
[ -n "$RANGE" ] && envs="$envs BENCH_RANGE=$RANGE"
envs="$envs BENCH_COMPACT=$COMPACT"
mkdir -p "$OUT_DIR"
{
    echo "# BSS generation speed: temper vs PyTorch"
    echo
    if [ -n "$MODEL" ]; then
        echo "Boundary-supporting samples per second on the trained Papernot/Carlini MNIST CNN teacher"
        echo "($MODEL_NAME, eval mode): per batch of 256 MNIST training images (the first 8 x 256, cycled, true"
        echo "labels), base-sample selection with the teacher only (the first 64 correctly classified), at most"
        echo "$STEPS BSS steps with eta $ETA ($POLICY targets, per-sample stop masks, range [${range/,/, }]) and"
        echo "the teacher's logits on the results; median of $REPS timed runs of ~${SECS} s each, warm-up excluded."
        echo "Samples stop once they cross, most of them within a few steps. temper (atk_bss_generate) evaluates"
        echo "only the still-active rows after the first step, and after a step in which many rows are expected to"
        echo "cross it runs a forward pass first and the backward only for the rows still active; the official code,"
        echo "and \"PyTorch official\", keep all 64 rows in the batch until every row has stopped (zero step for the"
        echo "stopped ones); \"PyTorch compacted\" (torch_bss.py --compact) gathers the active rows (without the split"
        echo "forward). Same BSS on all sides"
        echo "(up to the random target draws, different generators with the same distribution, and float rounding;"
        echo "see bench/bench_bss.c); mean steps and crossed show the work each side did."
    else
        echo "Boundary-supporting samples per second on the Papernot/Carlini MNIST CNN teacher (random weights,"
        echo "eval mode): per batch of 256 synthetic inputs, base-sample selection with the teacher only (64 base"
        echo "samples), $STEPS BSS steps with eta $ETA ($POLICY targets, per-sample stop masks, range [${range/,/, }])"
        echo "and the teacher's logits on the results; median of $REPS timed runs of ~${SECS} s each, warm-up"
        echo "excluded."
        if [ "$ETA" = 0.001 ]; then
            echo "With eta 0.001 no batch stops early, so both sides run all $STEPS forward/backward passes"
            echo "(see bench/bench_bss.c); mean steps and crossed samples below differ only through the random"
            echo "weights."
        fi
        if [ "$COMPACT" = 1 ]; then
            echo "\"PyTorch compacted\": torch_bss.py --compact, the active rows gathered as temper does."
        fi
    fi
    echo
    cat "$table"
    echo
    echo "- date: $start"
    echo "- command: $envs bench/run_bss.sh"
    [ -n "$MODEL" ] && echo "- teacher: $MODEL_NAME (sha256 $(sha256sum "$MODEL" | cut -c1-16)...)"
    echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), nproc $(nproc)"
    echo "- load average (1/5/15 min) before: $load_before, after: $load_after"
    echo "- CPU time used by other processes while each side ran: temper ${foreign_temper}%," \
         "PyTorch ${foreign_torch}%${foreign_compact:+, PyTorch compacted ${foreign_compact}%} of the machine" \
         "(0% = quiet)"
    echo "- git commit: $commit"
    echo "- temper: $(grep '^temper-info' "$TMP/temper.out" | cut -d' ' -f2-)"
    echo "- OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}" \
         "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
    grep '^pytorch-info' "$TMP/torch.out" | sed 's/^pytorch-info /- PyTorch: /' || true
    echo
    echo "Raw output:"
    echo
    echo '```'
    outs=("$TMP/temper.out" "$TMP/torch.out")
    [ "$COMPACT" = 1 ] && outs+=("$TMP/compact.out")
    grep -v -e '^temper-info' -e '^pytorch-info' "${outs[@]}" | sed 's/^[^:]*://'
    echo '```'
} >"$TMP/result.md"
mv -f "$TMP/result.md" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"

cat "$table"
echo "(written to $OUT)"
exit "$status"
