#!/usr/bin/env bash
# README command 1: install what is missing, build, and train + evaluate the quickstart experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/temper run experiments/quickstart.yaml "$@"
