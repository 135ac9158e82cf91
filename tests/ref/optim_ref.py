#!/usr/bin/python3
"""Reference trajectories for tests/test_optim.c, computed with torch.optim.

Problem: 4 float32 parameters p, start p0, gradient g = a * (p - c) (the gradient of
sum a_i (p_i - c_i)^2 / 2), computed in float32 exactly as the C test does. Five steps per optimizer
configuration; prints p after every step as C initialisers to paste into test_optim.c.
Run: /usr/bin/python3 tests/ref/optim_ref.py
"""
import torch

P0 = [0.5, -1.25, 2.0, 0.0]
A = [1.0, 0.5, 2.0, 3.0]
C = [0.1, 0.3, -0.7, 1.5]
STEPS = 5

CONFIGS = [
    ("sgd", lambda p: torch.optim.SGD([p], lr=0.1, weight_decay=0.01)),
    ("momentum", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9)),
    ("nesterov", lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
]


def main():
    print(f"/* torch {torch.__version__} */")
    a = torch.tensor(A, dtype=torch.float32)
    c = torch.tensor(C, dtype=torch.float32)
    for name, make in CONFIGS:
        p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
        opt = make(p)
        rows = []
        for _ in range(STEPS):
            with torch.no_grad():
                p.grad = a * (p - c)
            opt.step()
            rows.append(", ".join(f"{v:.9g}f" for v in p.detach().tolist()))
        print(f"static const float ref_{name}[{STEPS}][4] = {{")
        for r in rows:
            print(f"    {{{r}}},")
        print("};")


if __name__ == "__main__":
    main()
