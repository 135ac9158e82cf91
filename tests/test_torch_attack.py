#!/usr/bin/env python3
"""test_torch_attack.py - temper's FGSM and BIM give PyTorch's adversarial examples.

Usage: test_torch_attack.py <temper binary> <fixture_model binary>
Exit 77 = skipped: torch/numpy missing, or no MNIST test files in the data cache ($TEMPER_DATA or
~/.cache/temper/data; scripts/fetch_data.sh), since `temper attack` attacks a model's test set.

fixture_model writes a random Carlini CNN and a random MLP (random weights: no saturated softmax). For each,
`temper attack MODEL --attack fgsm|bim ... --output DIR` attacks the first N MNIST test images, and the
same formulas are computed here in PyTorch on the same model (scripts/temper_torch.py) and inputs:
  FGSM  x' = clip(x + eps sign(grad_x CE(z, y)), lo, hi) for samples classified right at x (others are
        left unchanged); targeted: x - eps sign(grad_x CE(z, t)) unless already classified as t.
  BIM   5 steps of size `step` from x (no random start): x' <- clip(x + clip(x' + step sign(g) - x, -eps,
        eps), lo, hi); a sample stops as soon as it is adversarial (checked on the logits of each step).
A random net classifies ~10% of MNIST right, so untargeted runs attack few samples: the targeted runs
(target y+1 mod 10) attack nearly all of them. Exact equality is not expected where a gradient coordinate
is ~0 (float32 sums in a different order can flip its sign; a flip in BIM can also move a sample's whole
path): at least 99.5% of the coordinates of the samples either side changed must agree within 1e-5, and
the max difference is reported. The test can fail: it also requires that many samples were changed.
"""
import os
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
ROOT = os.environ.get("TEMPER_SOURCE_DIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import temper_torch  # noqa: E402
from torch_attack import load_test, project  # noqa: E402  (the benchmark's IDX reader, same pixel values)

N = 256            # test images per run
ATOL = 1e-5        # a coordinate "agrees" within this
MIN_AGREE = 0.995  # fraction of the changed samples' coordinates that must agree
LO, HI = 0.0, 1.0


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)


def torch_attack(model, x, y, t, eps, step, iters):
    """FGSM (iters = 1, step = eps) or BIM on x [n, 1, 28, 28] with temper's semantics (see above)."""
    F = torch.nn.functional
    tg = t is not None
    cls = t if tg else y
    adv = x.clone()
    with torch.no_grad():
        p = model(x).argmax(1)
    run = ((p == t) if tg else (p != y)).logical_not().nonzero().squeeze(1)
    cur = x[run].clone()
    for _ in range(iters):
        if run.numel() == 0:
            break
        xr = cur.requires_grad_(True)
        z = model(xr)
        loss = F.cross_entropy(z, cls[run], reduction="sum")
        (g,) = torch.autograd.grad(-loss if tg else loss, xr)
        p = z.detach().argmax(1)
        keep = (p != t[run]) if tg else (p == y[run])
        run, cur, g = run[keep], cur.detach()[keep], g[keep]
        cur = project(x[run], cur + step * g.sign(), eps, LO, HI)
        adv[run] = cur
    return adv.numpy().reshape(len(y), -1)


def compare(temper, d, stem, attack, targeted, eps, step, iters, x, y):
    model, meta = temper_torch.load(os.path.join(d, stem + ".safetensors"))
    for prm in model.parameters():
        prm.requires_grad_(False)
    out = os.path.join(d, "%s-%s-%d" % (stem, attack, targeted))
    cmd = [temper, "attack", os.path.join(d, stem + ".safetensors"), "--attack", attack, "--eps", repr(eps),
           "--samples", str(N), "--data", "mnist", "--range", "%g,%g" % (LO, HI), "--output", out, "--quiet"]
    if attack == "bim":
        cmd += ["--iters", str(iters), "--step", repr(step)]
    if targeted:
        cmd += ["--targeted", "--targets", "next"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, "%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    run = os.path.join(out, "%s-eps%g" % (attack, eps))
    ours = np.load(os.path.join(run, "adv.npy")).reshape(N, -1)
    labels = np.load(os.path.join(run, "labels.npy"))
    targets = np.load(os.path.join(run, "targets.npy"))
    check(np.array_equal(labels, y.numpy()), "%s: labels.npy is not the first %d MNIST test labels" % (run, N))
    t = torch.from_numpy(((y.numpy() + 1) % 10).astype(np.int64)) if targeted else None
    check(np.array_equal(targets, t.numpy() if targeted else np.full(N, -1)), "%s: targets.npy %s" % (run, targets[:8]))
    theirs = torch_attack(model, x, y, t, eps, step, iters)
    x0 = x.numpy().reshape(N, -1)
    changed = (np.abs(ours - x0).max(1) > 0) | (np.abs(theirs - x0).max(1) > 0)
    diff = np.abs(ours - theirs)[changed]
    agree = float((diff <= ATOL).mean()) if changed.any() else 1.0
    rows = int((diff.max(1) > ATOL).sum()) if changed.any() else 0
    print("%-5s %-4s %-10s eps %.2f: %3d samples changed, %.4f%% of their coordinates agree within %g, "
          "max diff %.3g, %d samples with any difference"
          % (stem, attack, "targeted" if targeted else "untargeted", eps, int(changed.sum()), 100 * agree, ATOL,
             float(diff.max()) if changed.any() else 0.0, rows))
    check(agree >= MIN_AGREE, "%s %s: only %.4f of the coordinates agree" % (stem, attack, agree))
    # Nothing compared is nothing tested: a random net gets ~10% right (untargeted), targets nearly all.
    check(changed.sum() >= (N // 2 if targeted else 8), "%s %s: only %d samples changed" % (stem, attack, changed.sum()))
    return agree


def main():
    if len(sys.argv) != 3:
        print("usage: test_torch_attack.py <temper> <fixture_model>")
        return 2
    root = os.environ.get("TEMPER_DATA") or os.path.expanduser("~/.cache/temper/data")
    if not any(os.path.exists(os.path.join(root, "mnist", "t10k-images-idx3-ubyte" + s)) for s in ("", ".gz")):
        print("skipped: no MNIST test set in %s (scripts/fetch_data.sh)" % root)
        return 77
    r = subprocess.run([sys.argv[1], "attack", "--help"], capture_output=True, text=True)
    if r.returncode != 0 or "--output" not in r.stdout:
        print("skipped: %s has no 'attack' command with --output" % sys.argv[1])
        return 77
    torch.set_num_threads(1)
    x, y = load_test("mnist", N, LO, HI)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.argv[2], d], capture_output=True, text=True)
        check(r.returncode == 0, "fixture_model failed: %s%s" % (r.stdout, r.stderr))
        for stem in ("model", "mlp"):
            for targeted in (0, 1):
                compare(sys.argv[1], d, stem, "fgsm", targeted, 0.1, 0.1, 1, x, y)
                compare(sys.argv[1], d, stem, "bim", targeted, 0.1, 0.03, 5, x, y)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
