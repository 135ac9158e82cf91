#!/usr/bin/env bash
# Installs what temper needs on Debian 12 (as root), fetches the data sets and builds.
# Idempotent: when everything is present it only checks and rebuilds what changed (seconds).
#   scripts/setup.sh            runtime + build dependencies, data, Release build in build/
#   scripts/setup.sh --test     also the test-only peer: python3-torch (PyTorch cross-checks)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    *) echo "setup.sh: unknown option '$a' (expected --test)" >&2; exit 2 ;;
  esac
done

pkgs=(build-essential cmake pkg-config git libopenblas-openmp-dev libyaml-dev libcmocka-dev zlib1g-dev
      libpng-dev dataset-fashion-mnist ca-certificates)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
((want_test)) && pkgs+=(python3 python3-numpy python3-torch)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/fetch_data.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" > build/build.log 2>&1 || { tail -n 60 build/build.log >&2; echo "build failed (build/build.log)" >&2; exit 1; }
