#!/usr/bin/env python3
"""torch_bss.py - PyTorch side of the BSS-generation benchmark (the C side is bench_bss.c).

Measures boundary-supporting samples (BSS) per second on the Papernot/Carlini MNIST CNN teacher (eval mode),
as the official code (bhheo/BSS_distillation train_BSS_distillation.py, attacks/attack_BSS.py) makes them per
training batch, batched:
  - teacher forward of the batch of 256 (no_grad); base samples = the first 64 it classifies correctly (the
    official selection without a student's disagreement ranking);
  - targets as the official code, vectorised: softmax sorted descending, top class dropped, inverse-CDF draw
    u * (sum of the rest) over the cumulative sums (fallback: the second-best); --policy second: the
    second-best class (deterministic, so that both sides make the same BSS up to float rounding);
  - at most 10 steps: z = teacher(x); g = autograd of (z_k - z_b).sum() w.r.t. x; per-sample mask
    active = (argmax z == b) (all inactive: stop); x <- clamp(x + eta * active * (z_b - z_k + 1e-4) * g / |g|_2,
    lo, hi) with |g|_2 per sample (a zero norm: no step). All 64 rows stay in the batch for every step until
    all have stopped, the stopped ones with a zero step (the official behaviour);
  - one teacher forward (no_grad) on the final samples (their logits, as the distillation step needs them).
--compact does what temper's atk_bss_generate does instead: the first evaluation covers all rows, later ones
only the rows still active (gathered into a smaller batch; a row with a zero gradient stops), the logits of a
stopped row are those of its last evaluation, the last forward covers only the rows that moved in the last
step, and no evaluation follows a step in which nothing moved. Same BSS, less work once rows stop.

Teacher and data (as bench_bss.c):
  - default: torch_train.py's "cnn" randomly initialised from torch.manual_seed(1); synthetic inputs, a pool of
    8 batches of 256 U[lo, hi) with labels = the teacher's own predictions; range [0, 1]; eta 0.001 (with
    random weights nothing but near-ties crosses, so every batch runs all 10 steps on both sides);
  - --model FILE: a temper model file (safetensors), loaded with scripts/temper_torch.py;
    --data mnist: the first 8 x 256 MNIST training images (IDX files in $TEMPER_DATA/mnist or
    $HOME/.cache/temper/data/mnist, raw or gzip), pixels lo + (hi - lo) * byte / 255, with their true labels
    (selection keeps the correctly classified ones, as BSS distillation does);
  - --range lo,hi: else the model's temper.range metadata, else [-0.5, 0.5] with --data mnist, else [0, 1].
Every pool batch must hold at least --base correctly classified samples.
Protocol (same as bench_bss.c / torch_train.py): warm-up (~0.5 s, >= 5 batches, not timed), calibration
(half as many batches again, each timed; the fastest one sets the batch count, rounded to a multiple of the
pool's 8 batches), then `repeats` timed runs of that many batches (~`seconds` each); the median is reported.

PyTorch is configured as torch_attack.py: torch.set_num_threads(2) (this Debian torch starts with 1 thread),
oneDNN (mkldnn) on, glibc malloc kept from returning memory to the kernel (the script re-executes itself
with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ unless --malloc-default). Output: "pytorch-info ..." lines,
then one line
  "pytorch cnn bss_per_s=<x> ms_per_batch=<x> iters=<n> runs=<a,b,c> threads=<t> mean_steps=<x> crossed=<x>
   teacher=<random|FILE> data=<synthetic|mnist> range=<lo,hi> eta=<x> policy=<sample|second>
   mode=<official|compact>"
(mean_steps and crossed: over the BSS of the timed runs). Exit status non-zero on any failure.
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOMMAP = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
N_POOL = 8


def parse_range(s):
    """"lo,hi" -> (lo, hi) rounded to float32 as the C side (exp_parse_range); ValueError if malformed."""
    import math
    import numpy as np
    a, b = (float(v) for v in s.split(","))
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError("range %r: need finite lo < hi" % s)
    return float(np.float32(a)), float(np.float32(b))


def read_idx(path):
    """(dims, uint8 numpy array of those dims) of an IDX file of unsigned bytes, raw or gzip."""
    import numpy as np
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise SystemExit("torch_bss.py: %s(.gz): %s: run scripts/fetch_data.sh" % (path, e.strerror))
    if buf[:2] == b"\x1f\x8b":
        buf = gzip.decompress(buf)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08 or not 1 <= buf[3] <= 4:
        raise SystemExit("torch_bss.py: %s: not an IDX file of unsigned bytes" % path)
    nd = buf[3]
    dims = struct.unpack(">%dI" % nd, buf[4:4 + 4 * nd])
    count = 1
    for v in dims:
        count *= v
    if len(buf) != 4 + 4 * nd + count:
        raise SystemExit("torch_bss.py: %s: %d bytes, expected %d" % (path, len(buf), 4 + 4 * nd + count))
    return dims, np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_mnist(n, lo, hi):
    """The first n MNIST training images as float32 [n, 1, 28, 28] in [lo, hi] and their labels (int64 [n]),
    pixels lo + (hi - lo) * byte / 255 computed in double, as nn_data.c."""
    import numpy as np
    d = os.environ.get("TEMPER_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "temper", "data")
    idims, im = read_idx(os.path.join(d, "mnist", "train-images-idx3-ubyte"))
    ldims, lb = read_idx(os.path.join(d, "mnist", "train-labels-idx1-ubyte"))
    if len(idims) != 3 or len(ldims) != 1 or idims[0] != ldims[0] or idims[0] < n:
        raise SystemExit("torch_bss.py: mnist: images %s and labels %s: need >= %d of each" % (idims, ldims, n))
    lut = (np.float64(lo) + (np.float64(hi) - np.float64(lo)) * np.arange(256, dtype=np.float64) / 255.0)
    x = lut.astype(np.float32)[im[:n]].reshape(n, 1, idims[1], idims[2])
    return np.ascontiguousarray(x), lb[:n].astype(np.int64)


def select_targets(torch, model, x_all, y_all, a, gen):
    """Base samples (the first a.base correct ones) and their targets: (idx [m], tgt [m, 1])."""
    F = torch.nn.functional
    with torch.no_grad():
        zt = model(x_all)
    idx = (zt.argmax(1) == y_all).nonzero().squeeze(1)[:a.base]
    m = idx.numel()
    score, cls = F.softmax(zt[idx], 1).sort(dim=1, descending=True, stable=True)
    score, cls = score[:, 1:], cls[:, 1:]
    if a.policy == "second":
        return idx, cls[:, :1]
    thr = score.sum(1) * torch.rand(m, generator=gen)
    hit = score.cumsum(1) >= thr.unsqueeze(1)
    first = torch.where(hit.any(1), hit.float().argmax(1), torch.zeros(m, dtype=torch.long))
    return idx, cls.gather(1, first.unsqueeze(1))


def bss_batch(torch, model, x_all, y_all, a, gen):
    """BSS of one batch, the official way: returns (x_bss [m, 1, 28, 28], their logits [m, K], steps [m],
    crossed [m])."""
    idx, tgt = select_targets(torch, model, x_all, y_all, a, gen)
    m = idx.numel()
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


def bss_batch_compact(torch, model, x_all, y_all, a, gen):
    """The same BSS as bss_batch, evaluated as temper's atk_bss_generate does (see the module comment)."""
    idx, tgt = select_targets(torch, model, x_all, y_all, a, gen)
    m = idx.numel()
    x = x_all[idx].clone()
    zrec = None  # [m, K] each row's logits at its last evaluation
    base = None  # [m]
    tgt = tgt.squeeze(1)
    steps = torch.zeros(m, dtype=torch.long)
    rows = torch.arange(m)  # the rows of the next evaluation
    for it in range(a.steps + 1):
        xin = (x if it == 0 else x[rows]).detach()
        if it == a.steps:  # after the last step: the final samples' logits only
            with torch.no_grad():
                zrec[rows] = model(xin)
            break
        xin.requires_grad_(True)
        z = model(xin)
        zd = z.detach()
        if it == 0:
            zrec, base = zd.clone(), zd.argmax(1)
        else:
            zrec[rows] = zd
        b, k = base[rows], tgt[rows]
        zb, zk = z.gather(1, b.unsqueeze(1)), z.gather(1, k.unsqueeze(1))
        active = zd.argmax(1) == b
        if not bool(active.any()):
            break
        (g,) = torch.autograd.grad((active.float().unsqueeze(1) * (zk - zb)).sum(), xin)
        norm = g.flatten(1).norm(dim=1)
        move = active & (norm > 0)
        if not bool(move.any()):
            break
        coef = a.eta * ((zb - zk).detach().squeeze(1) + 1e-4) / norm
        rows, g, coef = rows[move], g[move], coef[move]
        x[rows] = (x[rows] + coef.view(-1, 1, 1, 1) * g).clamp_(a.lo, a.hi)
        steps[rows] += 1
    return x, zrec, steps, zrec.argmax(1) != base


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


def teacher(torch, a):
    """The teacher (eval mode, parameters frozen); sets a.lo, a.hi from --range, the model or the data."""
    meta = {}
    if a.model:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import temper_torch
        try:
            model, meta = temper_torch.load(a.model)
        except (OSError, ValueError) as e:
            raise SystemExit("torch_bss.py: %s" % e)
    else:
        sys.path.insert(0, HERE)
        from torch_train import build_net
        torch.manual_seed(1)
        model = build_net(torch, "cnn")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if a.range:
        a.lo, a.hi = parse_range(a.range)
    elif "temper.range" in meta:
        try:
            a.lo, a.hi = parse_range(meta["temper.range"])
        except ValueError:
            raise SystemExit("torch_bss.py: %s: metadata temper.range = %r is not 'lo,hi': give --range"
                             % (a.model, meta["temper.range"]))
    else:
        a.lo, a.hi = (-0.5, 0.5) if a.data == "mnist" else (0.0, 1.0)
    return model


def pool(torch, model, a):
    """xs, ys: N_POOL batches [batch, 1, 28, 28] and their labels (true, or the teacher's predictions)."""
    if a.data == "mnist":
        x, y = load_mnist(N_POOL * a.batch, a.lo, a.hi)
        xs = list(torch.from_numpy(x).split(a.batch))
        ys = list(torch.from_numpy(y).split(a.batch))
    else:
        if a.model:  # else the stream continues after the random CNN's init (seed 1), as before
            torch.manual_seed(1)
        xs = [a.lo + (a.hi - a.lo) * torch.rand(a.batch, 1, 28, 28) for _ in range(N_POOL)]
        ys = None
    with torch.no_grad():
        preds = [model(x).argmax(1) for x in xs]
    ys = ys or preds
    for p, (y, pr) in enumerate(zip(ys, preds)):
        correct = int((y == pr).sum())
        if correct < a.base:
            raise SystemExit("torch_bss.py: pool batch %d: the teacher classifies only %d of %d correctly, fewer "
                             "than --base %d" % (p, correct, a.batch, a.base))
    return xs, ys


def bench(torch, a):
    model = teacher(torch, a)
    xs, ys = pool(torch, model, a)
    gen = torch.Generator().manual_seed(1)
    stats = [0, 0, 0]  # BSS, steps, crossed
    run = bss_batch_compact if a.compact else bss_batch

    def step(i):
        _, _, steps, crossed = run(torch, model, xs[i % N_POOL], ys[i % N_POOL], a, gen)
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
    if a.iters:
        iters = max(5, a.iters)
    else:  # ~seconds, rounded to whole passes over the pool
        iters = max(N_POOL, N_POOL * int(a.seconds / per_batch / N_POOL + 0.5))
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
    print("pytorch cnn bss_per_s=%.1f ms_per_batch=%.3f iters=%d runs=%s threads=%d mean_steps=%.3f crossed=%.4f "
          "teacher=%s data=%s range=%g,%g eta=%g policy=%s mode=%s"
          % (med, 1000.0 * a.base / med, iters, ",".join("%.1f" % r for r in runs), torch.get_num_threads(),
             stats[1] / stats[0], stats[2] / stats[0], a.model or "random", a.data, a.lo, a.hi, a.eta, a.policy,
             "compact" if a.compact else "official"), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.5, help="target seconds per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--base", type=int, default=64, help="base samples (BSS) per batch")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--eta", type=float, default=0.001)
    ap.add_argument("--iters", type=int, default=0, help="fixed batches per run (no calibration)")
    ap.add_argument("--model", help="trained teacher: a temper model file (default: the random CNN)")
    ap.add_argument("--data", choices=("synthetic", "mnist"), default="synthetic")
    ap.add_argument("--range", help="lo,hi (default: the model's temper.range, else [-0.5, 0.5] for mnist, "
                    "else [0, 1])")
    ap.add_argument("--policy", choices=("sample", "second"), default="sample", help="BSS targets")
    ap.add_argument("--compact", action="store_true", help="evaluate only the active rows, as temper")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mkldnn", type=int, default=1)
    ap.add_argument("--malloc-default", action="store_true", help="do not raise glibc's mmap/trim thresholds")
    a = ap.parse_args()
    if a.base > a.batch or a.base < 1 or a.repeats < 1 or a.steps < 1 or not a.eta > 0:
        ap.error("need 1 <= base <= batch, repeats >= 1, steps >= 1, eta > 0")
    if a.range:
        try:
            parse_range(a.range)
        except ValueError:
            ap.error("--range: need lo,hi with finite lo < hi")
    if not a.malloc_default and any(os.environ.get(k) != v for k, v in NOMMAP.items()):
        env = dict(os.environ)
        env.update(NOMMAP)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    import torch
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
    info(torch)
    bench(torch, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
