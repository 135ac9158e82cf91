#!/usr/bin/env python3
"""torch_bss.py - PyTorch side of the BSS-generation benchmark (the C side is bench_bss.c).

Measures boundary-supporting samples (BSS) per second on the Papernot/Carlini MNIST CNN teacher
(torch_train.py's "cnn", randomly initialised from torch.manual_seed(1); eval mode), as the official code
(bhheo/BSS_distillation train_BSS_distillation.py, attacks/attack_BSS.py) makes them per training batch, batched:
  - teacher forward of the batch of 256 (no_grad); base samples = the first 64 it classifies correctly (the
    official selection without a student's disagreement ranking; labels are the teacher's own predictions,
    so every sample is a candidate);
  - targets as the official code, vectorised: softmax sorted descending, top class dropped, inverse-CDF draw
    u * (sum of the rest) over the cumulative sums (fallback: the second-best);
  - at most 10 steps: z = teacher(x); g = autograd of (z_k - z_b).sum() w.r.t. x; per-sample mask
    active = (argmax z == b) (all inactive: stop); x <- clamp(x + eta * active * (z_b - z_k + 1e-4) * g / |g|_2,
    0, 1) with |g|_2 per sample (a zero norm: no step);
  - one teacher forward (no_grad) on the final samples (their logits, as the distillation step needs them).
Synthetic data: a pool of 8 batches of 256 inputs U[0,1). eta is 0.001 by default (see bench_bss.c: with
random weights the official 0.3 can make the sides do different work through the all-stopped early exit).
Protocol (same as bench_bss.c / torch_train.py): warm-up (~0.5 s, >= 5 batches, not timed), calibration
(half as many batches again, each timed; the fastest one sets the batch count), then `repeats` timed runs of
a fixed number of batches chosen so that one run takes ~`seconds`; the median is reported.

PyTorch is configured as torch_attack.py: torch.set_num_threads(2) (this Debian torch starts with 1 thread),
oneDNN (mkldnn) on, glibc malloc kept from returning memory to the kernel (the script re-executes itself
with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ unless --malloc-default). Output: "pytorch-info ..." lines,
then one line
  "pytorch cnn bss_per_s=<x> ms_per_batch=<x> iters=<n> runs=<a,b,c> threads=<t> mean_steps=<x> crossed=<x>"
Exit status non-zero on any failure.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NOMMAP = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def bss_batch(torch, model, x_all, y_all, a, gen):
    """BSS of one batch: returns (x_bss [m, 1, 28, 28], their logits [m, K], steps [m], crossed [m])."""
    F = torch.nn.functional
    with torch.no_grad():
        zt = model(x_all)
    idx = (zt.argmax(1) == y_all).nonzero().squeeze(1)[:a.base]
    m = idx.numel()
    score, cls = F.softmax(zt[idx], 1).sort(dim=1, descending=True)
    score, cls = score[:, 1:], cls[:, 1:]
    thr = score.sum(1) * torch.rand(m, generator=gen)
    hit = score.cumsum(1) >= thr.unsqueeze(1)
    first = torch.where(hit.any(1), hit.float().argmax(1), torch.zeros(m, dtype=torch.long))
    tgt = cls.gather(1, first.unsqueeze(1))  # [m, 1]
    x = x_all[idx].clone()
    base = None
    steps = torch.zeros(m, dtype=torch.long)
    for _ in range(a.steps):
        x.requires_grad_(True)
        z = model(x)
        if base is None:
            base = z.detach().argmax(1, keepdim=True)
        zb, zk = z.gather(1, base), z.gather(1, tgt)
        (g,) = torch.autograd.grad((zk - zb).sum(), x)
        x = x.detach()
        active = (z.detach().argmax(1, keepdim=True) == base).float()
        if active.sum() == 0:
            break
        norm = g.flatten(1).norm(dim=1, keepdim=True)
        coef = a.eta * active * ((zb - zk).detach() + 1e-4) / norm
        coef = torch.where(norm > 0, coef, torch.zeros_like(coef))
        steps += (active.squeeze(1) > 0).long() & (norm.squeeze(1) > 0).long()
        x = (x + coef.view(-1, 1, 1, 1) * g).clamp_(a.lo, a.hi)
    with torch.no_grad():
        zf = model(x)
    return x, zf, steps, zf.argmax(1) != base.squeeze(1)


def info(torch):
    sys.path.insert(0, HERE)
    from torch_train import blas_info  # the same report as the training benchmark
    libs, par, conf = blas_info()
    print("pytorch-info version=%s threads=%d interop=%d omp_env=%s mkldnn=%d malloc_mmap_threshold=%s"
          % (torch.__version__, torch.get_num_threads(), torch.get_num_interop_threads(),
             os.environ.get("OMP_NUM_THREADS", "unset"), int(torch.backends.mkldnn.enabled),
             os.environ.get("MALLOC_MMAP_THRESHOLD_", "default")))
    print("pytorch-info blas_libs=%s openblas_parallel=%s openblas_config=%s"
          % (",".join(libs), par, conf.replace(" ", "_")), flush=True)


def bench(torch, a):
    sys.path.insert(0, HERE)
    from torch_train import build_net
    torch.manual_seed(1)
    model = build_net(torch, "cnn").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    xs = [torch.rand(a.batch, 1, 28, 28) for _ in range(8)]
    with torch.no_grad():
        ys = [model(x).argmax(1) for x in xs]
    gen = torch.Generator().manual_seed(1)
    stats = [0, 0, 0]  # BSS, steps, crossed

    def step(i):
        _, _, steps, crossed = bss_batch(torch, model, xs[i % 8], ys[i % 8], a, gen)
        stats[0] += steps.numel()
        stats[1] += int(steps.sum())
        stats[2] += int(crossed.sum())

    i, t0 = 0, time.perf_counter()
    while i < 5 or time.perf_counter() - t0 < 0.5:
        step(i)
        i += 1
    per_batch = float("inf")
    for k in range(max(2, i // 2)):
        t1 = time.perf_counter()
        step(i + k)
        per_batch = min(per_batch, time.perf_counter() - t1)
    iters = max(5, a.iters or int(a.seconds / per_batch + 0.5))
    stats[:] = [0, 0, 0]
    runs = []
    for _ in range(a.repeats):
        t1 = time.perf_counter()
        for k in range(iters):
            step(k)
        runs.append(iters * a.base / (time.perf_counter() - t1))
    if stats[0] != iters * a.base * a.repeats:
        raise SystemExit("torch_bss.py: fewer than %d base samples per batch" % a.base)
    med = statistics.median(runs)
    print("pytorch cnn bss_per_s=%.1f ms_per_batch=%.3f iters=%d runs=%s threads=%d mean_steps=%.3f crossed=%.4f"
          % (med, 1000.0 * a.base / med, iters, ",".join("%.1f" % r for r in runs), torch.get_num_threads(),
             stats[1] / stats[0], stats[2] / stats[0]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.5, help="target seconds per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--base", type=int, default=64, help="base samples (BSS) per batch")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--eta", type=float, default=0.001)
    ap.add_argument("--iters", type=int, default=0, help="fixed batches per run (no calibration)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mkldnn", type=int, default=1)
    ap.add_argument("--malloc-default", action="store_true", help="do not raise glibc's mmap/trim thresholds")
    a = ap.parse_args()
    if a.base > a.batch or a.base < 1 or a.repeats < 1:
        ap.error("need 1 <= base <= batch and repeats >= 1")
    if not a.malloc_default and any(os.environ.get(k) != v for k, v in NOMMAP.items()):
        env = dict(os.environ)
        env.update(NOMMAP)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    import torch
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
    a.lo, a.hi = 0.0, 1.0
    info(torch)
    bench(torch, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
