#!/usr/bin/env python3
"""check_torch_logits.py - does PyTorch get our logits from a trained temper model?

    build/temper eval results/mnist_cnn/model.safetensors --logits /tmp/ours.npy
    /usr/bin/python3 scripts/check_torch_logits.py results/mnist_cnn/model.safetensors /tmp/ours.npy

Loads the model with scripts/temper_torch.py, reads the same test images from the data cache
($TEMPER_DATA or ~/.cache/temper/data) in the model's pixel range (metadata temper.range), runs them
through PyTorch in float32 and prints the max abs difference to the logits temper wrote. Exit 1 if it is
above --tol (default 1e-4).
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import temper_torch  # noqa: E402


def read_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x00\x00\x08\x03":
        raise SystemExit(f"{path}: not an IDX ubyte image file")
    n, h, w = (int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, h, w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("model")
    ap.add_argument("logits", help="float32 .npy written by `temper eval MODEL --logits`")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    torch.set_num_threads(2)
    model, meta = temper_torch.load(args.model)
    ours = np.load(args.logits)
    data = meta.get("temper.data", "mnist")
    lo, hi = (float(v) for v in meta.get("temper.range", "0,1").split(","))
    root = os.environ.get("TEMPER_DATA") or os.path.expanduser("~/.cache/temper/data")
    base = os.path.join(root, data, "t10k-images-idx3-ubyte")
    path = base if os.path.exists(base) else base + ".gz"
    x = read_idx_images(path)[: ours.shape[0]].astype(np.float64)
    x = (lo + (hi - lo) * x / 255.0).astype(np.float32)  # as nn_data.c: in double, then float
    with torch.no_grad():
        theirs = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    diff = float(np.max(np.abs(theirs - ours)))
    agree = float(np.mean(theirs.argmax(1) == ours.argmax(1)))
    print(f"{args.model}: {ours.shape[0]} test images, max |logit| {np.abs(ours).max():.3f}, "
          f"max abs difference {diff:.3g}, argmax agreement {agree:.4%}")
    return 0 if diff <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
