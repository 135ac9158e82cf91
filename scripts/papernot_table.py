#!/usr/bin/env python3
"""Prints the Markdown table of docs/REPRODUCTION.md's Papernot section from a papernot2016_mnist results
folder (results/papernot2016_mnist or docs/results/papernot2016_mnist): per temperature the student's clean
accuracy, every attack's figure, the masking diagnostics and the wall time of training and attacks.
Usage: scripts/papernot_table.py [DIR]"""
import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/papernot2016_mnist"
    rows, total_train, total_atk = [], 0.0, 0.0
    for d in glob.glob(os.path.join(root, "temperature-*")):
        m_path, a_path = os.path.join(d, "metrics.json"), os.path.join(d, "attacks", "attacks.json")
        if not (os.path.exists(m_path) and os.path.exists(a_path)):
            continue
        m, a = load(m_path), load(a_path)
        res = {(r["run"], None if r["eps"] is None else round(r["eps"], 6)): r for r in a["results"]}
        t = float(d.rsplit("-", 1)[1])
        train = m["train_seconds"] + m.get("teacher", {}).get("train_seconds", 0.0)
        atk = sum(r["seconds"] for r in a["results"] if r["eps"] is None or "-eps" in r["run"])
        total_train, total_atk = total_train + train, total_atk + atk
        pct = lambda run, key="success_rate": "%.2f%%" % (100 * res[(run, None if "-eps" not in run else 0.3)][key])
        cw = res[("cw", None)]
        dg = a["diagnostics"]
        rows.append((t, "| %g | %.2f%% | %s | %s | %s | %s / %s | %.0f%%, %.2f | %.3g | %.1f%% | %.0f + %.0f |" % (
            t, 100 * m["test_accuracy"], pct("jsma-f"), pct("jsma-T"), pct("fgsm-eps0.3", "robust_accuracy"),
            pct("pgd-eps0.3"), pct("pgd-margin-eps0.3"), 100 * cw["success_rate"], cw["mean_l2"],
            dg["mean_abs_logit"], 100 * dg["frac_zero_gradient"], train / 60, atk / 60)))
    print("| T | clean accuracy | JSMA-F success | JSMA on softmax(z/100) | FGSM ε=0.3 robust accuracy "
          "| PGD-40 ε=0.3 success (CE / margin) | C&W success, mean L2 | mean \\|logit\\| | zero input gradient "
          "| minutes (training + attacks) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, r in sorted(rows):
        print(r)
    print("\n%d temperatures: training %.0f min, attacks %.0f min, %.1f h in all" % (
        len(rows), total_train / 60, total_atk / 60, (total_train + total_atk) / 3600))


if __name__ == "__main__":
    main()
