#!/usr/bin/env bash
# Keeps the small files of a long run in git so that a later session (a fresh machine) resumes it.
#   scripts/results_sync.sh save NAME [--models[=GLOB]]
#                                           results/NAME -> docs/results/NAME (metrics, logs, attack tables,
#                                           sweep tables; with --models also each model.safetensors, or those
#                                           whose path below results/NAME matches GLOB, so that a later batch
#                                           evaluation finds the trained students; never adversarial examples)
#   scripts/results_sync.sh restore NAME   docs/results/NAME -> results/NAME (existing files kept)
# A sweep reuses every run folder whose metrics.json holds the experiment's run key (and attacks/attacks.json
# when it attacks), so a restored folder resumes where the saved one stopped; a changed experiment recomputes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; name=${2:-}; models=${3:-}
[[ ($mode == save || $mode == restore) && -n $name && $name != */* && ($models == "" || $models == --models*) ]] ||
  { echo "usage: scripts/results_sync.sh save NAME [--models[=GLOB]] | restore NAME" >&2; exit 2; }
keep_models=()   # find(1) terms that also keep model files
[[ $models == --models ]] && keep_models=(-o -name model.safetensors)
[[ $models == --models=* ]] && { glob=${models#--models=}; keep_models=(-o -path "./${glob#./}"); }
if [[ $mode == save ]]; then
  src=results/$name; dst=docs/results/$name
  [[ -d $src ]] || { echo "results_sync.sh: $src: no such folder" >&2; exit 1; }
  (cd "$src" && find . \( -name metrics.json -o -name train_log.csv -o -name sweep.csv -o -name sweep.md \
      -o -path '*attacks/attacks.json' -o -path '*attacks/summary.csv' -o -name bss.json -o -name boundary.csv "${keep_models[@]}" \) \
      -print0) | while IFS= read -r -d '' f; do
    mkdir -p "$dst/$(dirname "$f")"; cp -p "$src/$f" "$dst/$f"
  done
else
  src=docs/results/$name; dst=results/$name
  [[ -d $src ]] || { echo "results_sync.sh: $src: no such folder" >&2; exit 1; }
  mkdir -p "$dst"; cp -rn "$src/." "$dst/"
fi
echo "$mode: $src -> $dst"
