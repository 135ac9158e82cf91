#!/usr/bin/env python3
"""torch_attack.py - PyTorch side of the attack-speed benchmark (the C side is bench_attack.c).

Measures adversarial examples per second of one attack on a temper model file loaded into PyTorch
(scripts/temper_torch.py: the same weights, the same architecture as torch.nn.Sequential), on the same
MNIST test images (read from the IDX files of the data cache, $TEMPER_DATA or ~/.cache/temper/data, in
the model's pixel range, metadata temper.range), with the same semantics as temper's attacks:
  fgsm  L-inf eps 0.3, CE, one step x + eps sign(grad); samples misclassified at x are left unchanged;
        the first N images (default 1000)
  pgd   L-inf eps 0.3, step 0.01, 40 iterations, random start U(-eps, eps), 1 restart, CE. A sample stops
        as soon as it is adversarial (checked on the logits of each forward); every iteration the samples
        still running are compacted into one batch (index_select), as temper does; the first N images
        (default 512)
  jsma  targeted JSMA-F (softmax at T = 1), gamma 0.145 (at most floor(784 * 0.145 / 2) = 56 pair
        steps), theta +1, pairs, search domain = features below hi. Per iteration one forward on the
        compacted batch of running samples and one backward pass: alpha = d p_t/dx, and beta =
        d (sum_{j != t} p_j)/dx = -alpha since the softmax sums to 1 (temper does the same; with
        --jsma-beta backward, a second backward pass (retain_graph) computes beta, as cleverhans does:
        ~8% slower, and its float32 rounding picks a different pair on near-ties). Then the pair search as
        batched tensor ops on a [B, D, D] score tensor (as cleverhans' jsma_symbolic: a = alpha_p + alpha_q,
        c = beta_p + beta_q, admissible when a > 0 and c < 0, score -a*c, diagonal excluded, argmax over the
        flattened D*D), in blocks of --jsma-chunk samples (default 2: the fastest of 1..64 here, as a
        block's ~5 MB temporaries then stay within the L3 cache; 16 samples per block is ~25% slower). Stops on success
        (argmax = t), no admissible pair, a domain of < 2 features, or 56 steps. The first M images x 9
        targets (default M = 100: 900 runs)
  cw    C&W L2, targeted, reduced for a benchmark: 1 binary-search step, 100 iterations of
        torch.optim.Adam (lr --cw-lr, default 0.1) on w with x' = lo + (hi - lo)(tanh(w) + 1)/2, loss
        ||x' - x||^2 + c max(0, max_{j != t} z_j - z_t), c = --cw-c (default 1), no abort-early; the output
        is the smallest-L2 adversarial x' seen. The first M images x 9 targets (default M = 32: 288 runs).
        (The speed does not depend on lr and c; at the reference's lr 0.01 only ~1% of the runs succeed
        within 100 iterations, which would leave the success rates nothing to cross-check.)
Batches of 128. Protocol (same as bench_attack.c): warm-up (>= 0.5 s and >= 5 batched input-gradient
passes, not timed), then `repeats` timed runs of the whole workload; the median is reported. The time
covers the attack and the prediction on x_adv (temper's atk_run makes it too); not data loading.

PyTorch is configured as in torch_train.py's fastest setting: torch.set_num_threads(2) (this Debian
torch starts with 1 thread), oneDNN (mkldnn) on, and glibc malloc kept from returning memory to the
kernel (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_; the script re-executes itself with them unless
--malloc-default). Output: "pytorch-info ..." lines, then one line
  "pytorch <label> <attack> adv_per_s=<x> seconds=<s> runs=<a,b,c> n=<runs> n_correct=<c> n_success=<s>
   success=<s/c> mean_iters=<x> mean_l0=<x> mean_l2=<x> mean_linf=<x> threads=<t>"
with the same definitions as bench_attack.c. Exit status non-zero on any failure.
"""
import argparse
import gzip
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))

NOMMAP = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
CW_SHRINK = 0.9999995  # as atk_cw.c: the reference's arctanh(x * 1.999999) on [-0.5, 0.5]
L0_TOL = 1e-3          # ATK_L0_TOL: l0 counts features changed by more than L0_TOL * (hi - lo)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise SystemExit("%s: not an IDX ubyte file" % path)
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_test(name, n, lo, hi):
    """The first n test images [n, 1, H, W] float32 in [lo, hi] (as nn_data.c: in double, then float)
    and labels [n] int64."""
    root = os.environ.get("TEMPER_DATA") or os.path.expanduser("~/.cache/temper/data")
    out = []
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        base = os.path.join(root, name, stem)
        out.append(read_idx(base if os.path.exists(base) else base + ".gz"))
    img, lab = out
    if img.shape[0] < n:
        raise SystemExit("test set has %d images, need %d" % (img.shape[0], n))
    x = img[:n].astype(np.float64)
    x = (lo + (hi - lo) * x / 255.0).astype(np.float32)
    return x.reshape(n, 1, img.shape[1], img.shape[2]), lab[:n].astype(np.int64)


def workload(attack, x, y, k):
    """Untargeted: one run per image. Targeted: image i x every class != y[i], in class order (as
    atk_targets_all). Returns x, y, t (t = -1 when untargeted)."""
    if attack in ("fgsm", "pgd"):
        return x, y, np.full(len(y), -1, dtype=np.int64)
    idx, tg = [], []
    for i in range(len(y)):
        for j in range(k):
            if j != y[i]:
                idx.append(i)
                tg.append(j)
    idx = np.array(idx)
    return x[idx], y[idx], np.array(tg, dtype=np.int64)


# ---- the attacks: each takes one batch (x [B, C, H, W], y [B], t [B]) and returns (x_adv, iters) ----

def fgsm(torch, model, x, y, t, a):
    F = torch.nn.functional
    xr = x.clone().requires_grad_(True)
    z = model(xr)
    (g,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), xr)
    adv = (x + a.eps * g.sign()).clamp_(a.lo, a.hi)
    wrong = z.detach().argmax(1) != y  # misclassified at x: left unchanged
    adv[wrong] = x[wrong]
    return adv, (~wrong).long()


def project(x0, xa, eps, lo, hi):
    """x0 + clip(xa - x0, -eps, eps), clipped to [lo, hi] (atk_project's order of operations)."""
    return (x0 + (xa - x0).clamp_(-eps, eps)).clamp_(lo, hi)


def pgd(torch, model, x, y, t, a):
    F = torch.nn.functional
    n = x.shape[0]
    adv = x.clone()
    iters = torch.zeros(n, dtype=torch.long)
    with torch.no_grad():
        run = (model(x).argmax(1) == y).nonzero().squeeze(1)  # misclassified at x: left unchanged
    x0 = x[run]
    cur = project(x0, x0 + a.eps * (2 * torch.rand_like(x0) - 1), a.eps, a.lo, a.hi)
    adv[run] = cur
    for it in range(a.iters):  # (temper's extra check after the last step changes nothing in adv)
        if run.numel() == 0:
            break
        xr = cur.requires_grad_(True)
        z = model(xr)
        (g,) = torch.autograd.grad(F.cross_entropy(z, y[run], reduction="sum"), xr)
        keep = z.detach().argmax(1) == y[run]  # not adversarial yet: steps on
        cur = cur.detach()
        if not bool(keep.all()):  # compact: the adversarial ones are finished (adv holds their point)
            run, x0, cur, g = run[keep], x0[keep], cur[keep], g[keep]
        iters[run] += 1
        cur = project(x0, cur + a.step * g.sign(), a.eps, a.lo, a.hi)
        adv[run] = cur
    return adv, iters


def jsma_pairs(torch, A, B):
    """Best admissible pair per row of A, B [m, D] (out-of-domain entries already -inf / +inf):
    (best score [m] (-1 if none), p [m], q [m]); first (p, q) in row-major order among equal scores."""
    m, D = A.shape
    a = A[:, :, None] + A[:, None, :]
    c = B[:, :, None] + B[:, None, :]
    ok = (a > 0) & (c < 0)
    s = a.mul_(c).neg_()  # -a*c (bitwise equal to (-a)*c)
    s.masked_fill_(~ok, -1.0)
    s.diagonal(dim1=1, dim2=2).fill_(-1.0)
    best, arg = s.view(m, D * D).max(1)
    return best, arg // D, arg % D


_TRIU = {}


def jsma_pairs_triu(torch, A, B):
    """As jsma_pairs, over the D(D-1)/2 pairs p < q only (row-major order, as the full matrix's first hit)."""
    D = A.shape[1]
    if D not in _TRIU:
        _TRIU[D] = torch.triu_indices(D, D, 1)
    pi, qi = _TRIU[D]
    a = A[:, pi] + A[:, qi]
    c = B[:, pi] + B[:, qi]
    ok = (a > 0) & (c < 0)
    s = a.mul_(c).neg_()
    s.masked_fill_(~ok, -1.0)
    best, arg = s.max(1)
    return best, pi[arg], qi[arg]


def jsma(torch, model, x, y, t, a):
    F = torch.nn.functional
    n, shape = x.shape[0], x.shape[1:]
    D = x[0].numel()
    xa = x.reshape(n, D).clamp(a.lo, a.hi)
    iters = torch.zeros(n, dtype=torch.long)
    run = torch.arange(n)
    inf = torch.tensor(float("inf"))
    for it in range(int(math.floor(D * a.gamma / 2.0))):
        dom = xa[run] < a.hi
        run = run[dom.sum(1) >= 2]
        if run.numel() == 0:
            break
        xr = xa[run].requires_grad_(True)
        z = model(xr.view((-1,) + tuple(shape)))
        p = F.softmax(z / a.temperature, dim=1)
        tr = t[run]
        onehot = F.one_hot(tr, p.shape[1]).to(p.dtype)
        (alpha,) = torch.autograd.grad((p * onehot).sum(), xr, retain_graph=a.jsma_beta == "backward")
        if a.jsma_beta == "backward":
            (beta,) = torch.autograd.grad((p * (1 - onehot)).sum(), xr)
        else:  # sum_j p_j = 1: the others' gradient is -alpha (temper's choice)
            beta = -alpha
        live = z.detach().argmax(1) != tr  # at the target: success, finished
        run, alpha, beta = run[live], alpha[live], beta[live]
        if run.numel() == 0:
            break
        iters[run] += 1
        dom = xa[run] < a.hi
        A = torch.where(dom, alpha, -inf)
        B = torch.where(dom, beta, inf)
        found = torch.empty(run.numel(), dtype=torch.bool)
        for s in range(0, run.numel(), a.jsma_chunk):
            e = min(s + a.jsma_chunk, run.numel())
            best, pp, qq = (jsma_pairs_triu if a.jsma_pairs == "triu" else jsma_pairs)(torch, A[s:e], B[s:e])
            found[s:e] = best >= 0
            rows = run[s:e][best >= 0]
            xa[rows, pp[best >= 0]] = a.hi
            xa[rows, qq[best >= 0]] = a.hi
        run = run[found]  # no admissible pair: the attack fails on this sample
    return xa.view((n,) + tuple(shape)), iters


def cw(torch, model, x, y, t, a):
    n = x.shape[0]
    lo, hi = a.lo, a.hi
    half = 0.5 * (hi - lo)
    u = ((x.double() - lo) / (hi - lo) * 2 - 1).clamp(-1, 1)
    w = torch.atanh(CW_SHRINK * u).float().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=a.cw_lr)
    best_l2 = torch.full((n,), float("inf"))
    adv = x.clone()
    tmask = torch.nn.functional.one_hot(t, a.k).bool()
    for it in range(a.cw_iters):
        xp = (lo + half * (torch.tanh(w) + 1)).clamp(lo, hi)
        z = model(xp)
        l2 = (xp - x).pow(2).flatten(1).sum(1)
        real = z[tmask]
        other = z.masked_fill(tmask, float("-inf")).max(1).values
        loss1 = (other - real + a.kappa).clamp(min=0)
        loss = (l2 + a.cw_c * loss1).sum()
        with torch.no_grad():
            ok = z.argmax(1) == t
            better = ok & (l2 < best_l2)
            best_l2 = torch.where(better, l2, best_l2)
            adv[better] = xp[better]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return adv, torch.full((n,), a.cw_iters, dtype=torch.long)


ATTACKS = {"fgsm": fgsm, "pgd": pgd, "jsma": jsma, "cw": cw}


def run_all(torch, model, fn, X, Y, T, a):
    """The whole workload in batches; returns x_adv, pred on x_adv, iters (numpy)."""
    advs, preds, its = [], [], []
    for s in range(0, X.shape[0], a.batch):
        xb, yb, tb = X[s:s + a.batch], Y[s:s + a.batch], T[s:s + a.batch]
        adv, it = fn(torch, model, xb, yb, tb, a)
        with torch.no_grad():
            preds.append(model(adv).argmax(1))
        advs.append(adv.detach())
        its.append(it)
    return torch.cat(advs).numpy(), torch.cat(preds).numpy(), torch.cat(its).numpy()


def warm_up(torch, model, X):
    xb = X[:128].clone().requires_grad_(True)
    i, t0 = 0, time.perf_counter()
    while i < 5 or time.perf_counter() - t0 < 0.5:
        (g,) = torch.autograd.grad(model(xb)[:, 0].sum(), xb)
        i += 1


def report(a, X, Y, T, adv, pred, iters, clean, runs):
    d = adv.reshape(len(Y), -1) - X.numpy().reshape(len(Y), -1)
    y, t = Y.numpy(), T.numpy()
    correct = clean == y
    success = correct & ((pred == t) if a.attack in ("jsma", "cw") else (pred != y))
    nc, ns = int(correct.sum()), int(success.sum())
    dd = np.abs(d[success].astype(np.float64))
    l0 = (dd > L0_TOL * (a.hi - a.lo)).sum(1)
    l2 = np.sqrt((dd * dd).sum(1))
    li = dd.max(1) if ns else np.zeros(0)
    med = statistics.median(runs)
    mean = (lambda v: float(v.mean()) if len(v) else 0.0)
    print("pytorch %s %s adv_per_s=%.2f seconds=%.3f runs=%s n=%d n_correct=%d n_success=%d success=%.4f "
          "mean_iters=%.2f mean_l0=%.2f mean_l2=%.4f mean_linf=%.4f threads=%d"
          % (a.name, a.attack, med, len(Y) / med, ",".join("%.2f" % r for r in runs), len(Y), nc, ns,
             ns / nc if nc else 0.0, mean(iters[correct]), mean(l0), mean(l2), mean(li), a.threads_now),
          flush=True)


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--attack", required=True, choices=sorted(ATTACKS))
    ap.add_argument("--name", default="model")
    ap.add_argument("--n", type=int, default=0, help="fgsm/pgd: images (default 1000 / 512)")
    ap.add_argument("--images", type=int, default=0, help="jsma/cw: images x 9 targets (default 100 / 32)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cw-c", type=float, default=1.0)
    ap.add_argument("--cw-lr", type=float, default=0.1)
    ap.add_argument("--jsma-chunk", type=int, default=2, help="samples per [B, D, D] pair-search block")
    ap.add_argument("--jsma-beta", choices=("backward", "identity"), default="identity",
                    help="jsma: beta as -alpha (sum of p = 1, as temper; default) or by a second backward pass")
    ap.add_argument("--jsma-pairs", choices=("full", "triu"), default="full",
                    help="jsma: score the full [B, D, D] tensor (default) or only the pairs p < q")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mkldnn", type=int, default=1)
    ap.add_argument("--malloc-default", action="store_true", help="do not raise glibc's mmap/trim thresholds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", help="write DIR/pytorch_<label>_<attack>_{adv,pred}.npy")
    a = ap.parse_args()
    if not a.malloc_default and any(os.environ.get(k) != v for k, v in NOMMAP.items()):
        env = dict(os.environ)
        env.update(NOMMAP)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    import torch
    import temper_torch

    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
    torch.manual_seed(a.seed)
    info(torch)
    model, meta = temper_torch.load(a.model)
    for p in model.parameters():
        p.requires_grad_(False)
    a.lo, a.hi = (float(v) for v in meta.get("temper.range", "0,1").split(","))
    a.eps, a.step, a.iters, a.gamma, a.temperature, a.kappa, a.cw_iters = 0.3, 0.01, 40, 0.145, 1.0, 0.0, 100
    a.threads_now = torch.get_num_threads()
    targeted = a.attack in ("jsma", "cw")
    n_img = (a.images or (32 if a.attack == "cw" else 100)) if targeted else (a.n or (512 if a.attack == "pgd" else 1000))
    x, y = load_test(meta.get("temper.data", "mnist"), n_img, a.lo, a.hi)
    with torch.no_grad():
        a.k = model(torch.from_numpy(x[:1])).shape[1]
    x, y, t = workload(a.attack, x, y, a.k)
    X, Y, T = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), torch.from_numpy(t)
    with torch.no_grad():
        clean = torch.cat([model(X[s:s + a.batch]).argmax(1) for s in range(0, len(Y), a.batch)]).numpy()
    warm_up(torch, model, X)
    runs = []
    for r in range(a.repeats):
        torch.manual_seed(a.seed)
        t0 = time.perf_counter()
        adv, pred, iters = run_all(torch, model, ATTACKS[a.attack], X, Y, T, a)
        runs.append(len(Y) / (time.perf_counter() - t0))
    report(a, X, Y, T, adv, pred, iters, clean, runs)
    if a.save:
        np.save(os.path.join(a.save, "pytorch_%s_%s_adv.npy" % (a.name, a.attack)), adv.reshape(len(Y), -1))
        np.save(os.path.join(a.save, "pytorch_%s_%s_pred.npy" % (a.name, a.attack)), pred.astype(np.int32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
