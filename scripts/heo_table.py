#!/usr/bin/env python3
"""Prints the Markdown tables of docs/REPRODUCTION.md's Heo et al. (BSS) section from a heo2019_bss_* results
folder (results/heo2019_bss_mnist or its copy in docs/results/): read from the run folders
<variant>/subset-<n>/seed-<s>/{metrics.json,attacks/attacks.json}, so that a partial sweep shows what finished.
Table 1: clean test accuracy per training-set size and variant, mean ± sample standard deviation over the
seeds, and KD with BSS minus KD. Table 2: PGD robust accuracy, teacher agreement and MagSim / AngSim.
Usage: scripts/heo_table.py [DIR]"""
import glob
import json
import os
import statistics
import sys

VARIANTS = [("hard", "hard labels"), ("kd", "Hinton KD"), ("bss", "KD with BSS"), ("ddgsd", "DDGSD")]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def runs(root):
    """{(variant, subset): [run, ...]}, run = dict of the figures of one finished seed."""
    out = {}
    for d in sorted(glob.glob(os.path.join(root, "*", "subset-*", "seed-*"))):
        variant, subset = d.split(os.sep)[-3], int(d.split(os.sep)[-2].split("-")[1])
        m, a = load(os.path.join(d, "metrics.json")), load(os.path.join(d, "attacks", "attacks.json"))
        if m is None or a is None:  # attacks.json is written last: without it the run is unfinished
            continue
        r = {"acc": m["test_accuracy"], "agree": m.get("teacher_student_agreement"),
             "train_samples": m.get("train_samples"), "seconds": m.get("train_seconds")}
        bd = m.get("boundary") or {}
        r["magsim"], r["angsim"] = bd.get("magsim"), bd.get("angsim")
        for x in a["results"]:
            if x["eps"] is not None:
                r["%s %g" % (x["attack"], x["eps"])] = x["robust_accuracy"]
        out.setdefault((variant, subset), []).append(r)
    return out


def stat(rs, key, scale=100.0, fmt="%.2f"):
    v = [r[key] * scale for r in rs if r.get(key) is not None]
    if not v:
        return "–"
    if len(v) == 1:
        return fmt % v[0] + " (n=1)"
    return (fmt + " ± " + fmt) % (statistics.mean(v), statistics.stdev(v))


def size_name(subset, rs):
    n = subset if subset else (rs[0]["train_samples"] if rs and rs[0]["train_samples"] else 60000)
    return "%s (%s)" % ("{:,}".format(n), "all" if subset == 0 else "%g%%" % (100.0 * n / 60000))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/heo2019_bss_mnist"
    t = runs(root)
    subsets = sorted({s for _, s in t}, key=lambda s: (s == 0, s))
    print("| training images | " + " | ".join(n for _, n in VARIANTS) + " | BSS − KD | seeds |")
    print("|---|" + "---:|" * (len(VARIANTS) + 2))
    for s in subsets:
        cells = [stat(t.get((v, s), []), "acc") for v, _ in VARIANTS]
        kd, bss = t.get(("kd", s), []), t.get(("bss", s), [])
        diff = "–"
        if kd and bss:
            diff = "%+.2f" % (100 * (statistics.mean(r["acc"] for r in bss) - statistics.mean(r["acc"] for r in kd)))
        n = max(len(t.get((v, s), [])) for v, _ in VARIANTS)
        rs = next((t[(v, s)] for v, _ in VARIANTS if (v, s) in t), [])
        print("| %s | %s | %s | %d |" % (size_name(s, rs), " | ".join(cells), diff, n))
    print()
    keys = sorted({k for rs in t.values() for r in rs for k in r if k.startswith("pgd ")})
    print("| training images | variant | " + " | ".join("PGD ε=%s robust" % k.split()[1] for k in keys) +
          " | agreement with the teacher | MagSim | AngSim |")
    print("|---|---|" + "---:|" * (len(keys) + 3))
    for s in subsets:
        for v, name in VARIANTS:
            rs = t.get((v, s), [])
            if not rs:
                continue
            cells = [stat(rs, k) for k in keys] + [stat(rs, "agree"), stat(rs, "magsim", 1.0, "%.3f"),
                                                   stat(rs, "angsim", 1.0, "%.3f")]
            print("| %s | %s | %s |" % (size_name(s, rs), name, " | ".join(cells)))
    secs = sum(r["seconds"] or 0 for rs in t.values() for r in rs)
    print("\n%d runs, training %.0f min in all" % (sum(len(rs) for rs in t.values()), secs / 60))


if __name__ == "__main__":
    main()
