#!/usr/bin/env python3
"""test_torch_model.py - our model files in PyTorch give our logits.

Usage: test_torch_model.py <temper binary> <fixture_model binary>   (exit 77 = skipped: no torch)

fixture_model writes a random Carlini MNIST CNN (T = 20) and a random MLP, 64 random inputs each and
the logits our C forward pass computes. Here scripts/temper_torch.py rebuilds both as
torch.nn.Sequential from the safetensors file alone (load_state_dict strict) and the logits must agree
to 1e-4 (float32 sums in a different order differ by ~1e-6 at these magnitudes). Also checks the
metadata, the architecture, the file layout, and that the loader rejects a corrupted file.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("skipped: torch/numpy not importable by %s" % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("TEMPER_SOURCE_DIR", os.path.dirname(HERE)), "scripts"))
import temper_torch  # noqa: E402

TOL = 1e-4

CARLINI = [
    {"type": "conv2d", "filters": 32, "kernel": 3, "stride": 1, "pad": 0, "init": "he"},
    {"type": "relu"},
    {"type": "conv2d", "filters": 32, "kernel": 3, "stride": 1, "pad": 0, "init": "he"},
    {"type": "relu"},
    {"type": "maxpool", "kernel": 2, "stride": 0},
    {"type": "conv2d", "filters": 64, "kernel": 3, "stride": 1, "pad": 0, "init": "he"},
    {"type": "relu"},
    {"type": "conv2d", "filters": 64, "kernel": 3, "stride": 1, "pad": 0, "init": "he"},
    {"type": "relu"},
    {"type": "maxpool", "kernel": 2, "stride": 0},
    {"type": "flatten"},
    {"type": "dense", "units": 200, "init": "he"},
    {"type": "relu"},
    {"type": "dropout", "rate": 0.5},
    {"type": "dense", "units": 200, "init": "he"},
    {"type": "relu"},
    {"type": "dense", "units": 10, "init": "he"},
]
MLP = [{"type": "flatten"}, {"type": "dense", "units": 100, "init": "glorot"}, {"type": "relu"},
       {"type": "dense", "units": 10, "init": "he"}]


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)


def check_layout(path):
    """Header padded to 8 bytes; tensors in layer order, contiguous from 0 to the end of the file."""
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    check(hlen % 8 == 0, "%s: header length %d not a multiple of 8" % (path, hlen))
    header = json.loads(buf[8:8 + hlen])
    names = [k for k in header if k != "__metadata__"]
    order = sorted(names, key=lambda n: (int(n.split(".")[0]), n.split(".")[1] != "weight"))
    check(names == order, "%s: tensors not in layer order: %s" % (path, names))
    at = 0
    for n in names:
        a, b = header[n]["data_offsets"]
        check(a == at, "%s: tensor %s begins at %d, expected %d" % (path, n, a, at))
        at = b
    check(8 + hlen + at == len(buf), "%s: size %d != 8 + %d + %d" % (path, len(buf), hlen, at))
    return buf, hlen


def compare(d, stem, xname, lname, arch, temperature):
    path = os.path.join(d, stem + ".safetensors")
    model, meta = temper_torch.load(path)
    check(json.loads(meta["temper.arch"]) == arch, "%s: arch %s" % (stem, meta["temper.arch"]))
    check(float(meta["temper.temperature"]) == temperature, "%s: temperature %s" % (stem, meta["temper.temperature"]))
    check(meta["temper.input_shape"] == "1,28,28", "%s: input shape %s" % (stem, meta["temper.input_shape"]))
    check(meta.get("fixture") == stem and meta["format"] == "pt", "%s: metadata %s" % (stem, meta))
    check(len(model) == len(arch), "%s: %d modules for %d layers" % (stem, len(model), len(arch)))
    x = np.load(os.path.join(d, xname))
    ref = np.load(os.path.join(d, lname))
    check(x.shape == (64, 1, 28, 28) and ref.shape == (64, 10), "%s: shapes %s %s" % (stem, x.shape, ref.shape))
    with torch.no_grad():
        out = model(temper_torch.model_input(model, meta, x)).numpy()
    diff = float(np.abs(out - ref).max())
    print("%s: max |logit diff| torch vs temper = %.3g (max |logit| %.3g, tolerance %g)"
          % (stem, diff, float(np.abs(ref).max()), TOL))
    check(diff <= TOL, "%s: logits differ by %g > %g" % (stem, diff, TOL))
    # A test that can fail: the spread of logits across inputs is far above the tolerance.
    check(float(np.abs(ref - ref.mean(axis=0)).max()) > 100 * TOL, "%s: logits do not depend on x" % stem)
    return path


def check_rejects(d, path):
    buf, hlen = check_layout(path)
    bad = os.path.join(d, "truncated.safetensors")
    with open(bad, "wb") as f:
        f.write(buf[:-4])
    try:
        temper_torch.load(bad)
    except temper_torch.FormatError as e:
        check(bad in str(e), "message does not name the file: %s" % e)
    else:
        check(False, "truncated file accepted")


def main():
    if len(sys.argv) != 3:
        print("usage: test_torch_model.py <temper> <fixture_model>")
        return 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.argv[2], d], capture_output=True, text=True)
        check(r.returncode == 0, "fixture_model failed: %s%s" % (r.stdout, r.stderr))
        path = compare(d, "model", "x.npy", "logits.npy", CARLINI, 20.0)
        compare(d, "mlp", "mlp.x.npy", "mlp.logits.npy", MLP, 1.0)
        check_rejects(d, path)
        check_layout(os.path.join(d, "mlp.safetensors"))
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
