#!/usr/bin/env python3
"""temper_torch.py - load a temper model file (safetensors) into PyTorch.

    import temper_torch
    model, meta = temper_torch.load("model.safetensors")   # torch.nn.Sequential (eval mode), dict of str
    logits = model(torch.from_numpy(x))                     # x: float32 [N, C, H, W]

CLI:  python3 scripts/temper_torch.py MODEL [--npy X.npy] [--save-logits OUT.npy]
prints the architecture and metadata; with --npy, the argmax of the logits of each input.

The file is parsed here (struct + json + numpy) with the same strict checks as the C loader, so the
`safetensors` pip package (absent from Debian 12) is not needed. Modules are built in the order of
the temper.arch list, so state_dict names ("<index>.weight"/"<index>.bias") match the file exactly
and load_state_dict runs strict. Standard library + numpy + torch only.
"""
import argparse
import json
import struct
import sys

import numpy as np

HEADER_LIMIT = 100 << 20  # bytes, as the safetensors format and the C loader
RESERVED = ("format", "temper.arch", "temper.input_shape", "temper.temperature", "temper.version")


class FormatError(ValueError):
    """A file that is not a valid temper model file; the message names the file."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in JSON object")
    return dict(pairs)


def _reject_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _json(text):
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def read_safetensors(path):
    """(metadata dict, {name: float32 numpy array}) of a safetensors file holding only F32 tensors
    whose data_offsets tile the data area exactly. Raises FormatError naming path."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise FormatError("%s: file too short (%d bytes) for a safetensors header" % (path, len(buf)))
    (hlen,) = struct.unpack("<Q", buf[:8])
    if hlen == 0 or hlen > HEADER_LIMIT or hlen > len(buf) - 8:
        raise FormatError("%s: header length %d is absurd or runs past the end of the file" % (path, hlen))
    try:
        header = _json(buf[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("%s: header is not valid JSON: %s" % (path, e)) from None
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("%s: __metadata__ must map strings to strings" % path)
    data = memoryview(buf)[8 + hlen:]
    tensors, spans = {}, []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%s: tensor %s: entry must be {dtype, shape, data_offsets}" % (path, name))
        if e["dtype"] != "F32":
            raise FormatError("%s: tensor %s: dtype %s, expected F32" % (path, name, e["dtype"]))
        shape, offs = e["shape"], e["data_offsets"]
        if not (isinstance(shape, list) and isinstance(offs, list) and len(offs) == 2
                and all(_is_count(v) for v in shape + offs)):
            raise FormatError("%s: tensor %s: shape and data_offsets must be lists of integers >= 0" % (path, name))
        a, b = offs
        count = int(np.prod(shape, dtype=np.int64))
        if not (a <= b <= len(data)) or b - a != 4 * count:
            raise FormatError("%s: tensor %s: data_offsets [%d, %d] do not fit shape %s and data of %d bytes"
                              % (path, name, a, b, shape, len(data)))
        tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=a).reshape(shape).astype(np.float32)
        spans.append((a, b, name))
    at = 0
    for a, b, name in sorted(spans):
        if a != at:
            raise FormatError("%s: tensor %s: data_offsets not contiguous (begin %d, expected %d)" % (path, name, a, at))
        at = b
    if at != len(data):
        raise FormatError("%s: file size %d != 8 + header %d + data %d" % (path, len(buf), hlen, at))
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise FormatError("%s: tensor %s holds NaN or Inf" % (path, name))
    return meta, tensors


def input_shape(meta):
    """(C, H, W) from the temper.input_shape metadata."""
    c, h, w = (int(v) for v in meta["temper.input_shape"].split(","))
    return c, h, w


def build(arch, in_shape):
    """torch.nn.Sequential equivalent to a temper.arch list for inputs of shape (C, H, W).
    A net whose first layer is dense takes [N, D] inputs (D = C*H*W); otherwise [N, C, H, W]."""
    import torch.nn as nn

    c, h, w = in_shape
    spatial = not (arch and arch[0]["type"] == "dense")
    if not spatial:
        c, h, w = c * h * w, 1, 1
    mods = []
    for i, L in enumerate(arch):
        t = L["type"]
        if t in ("conv2d", "maxpool") and not spatial:
            raise ValueError("layer %d (%s) needs a [N, C, H, W] input" % (i, t))
        if t == "conv2d":
            k, s, p = L["kernel"], L["stride"], L["pad"]
            mods.append(nn.Conv2d(c, L["filters"], k, stride=s, padding=p))
            c, h, w = L["filters"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t == "maxpool":
            k = L["kernel"]
            s = L["stride"] or k  # stride 0 means "same as the kernel", as torch's default
            mods.append(nn.MaxPool2d(k, stride=s))
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif t == "flatten":
            mods.append(nn.Flatten())
            c, h, w, spatial = c * h * w, 1, 1, False
        elif t == "dense":
            if spatial:
                raise ValueError("layer %d (dense) on a [N, C, H, W] tensor: torch needs a flatten first" % i)
            mods.append(nn.Linear(c, L["units"]))
            c = L["units"]
        elif t == "relu":
            mods.append(nn.ReLU())
        elif t == "dropout":
            mods.append(nn.Dropout(L["rate"]))
        else:
            raise ValueError("layer %d: unknown type %r" % (i, t))
    return nn.Sequential(*mods)


def load(path):
    """(torch.nn.Sequential in eval mode, metadata dict of strings) of a temper model file."""
    import torch

    meta, tensors = read_safetensors(path)
    if "temper.arch" not in meta:
        raise FormatError("%s: not a temper model file (foreign safetensors?)" % path)
    arch = _json(meta["temper.arch"])
    model = build(arch, input_shape(meta))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    model.eval()
    return model, meta


def model_input(model, meta, x):
    """x (numpy, any shape with N*C*H*W elements) as the float32 tensor the model takes."""
    import torch
    import torch.nn as nn

    c, h, w = input_shape(meta)
    x = np.ascontiguousarray(x, dtype=np.float32)
    first = next(iter(model))
    shape = (-1, c * h * w) if isinstance(first, nn.Linear) else (-1, c, h, w)
    return torch.from_numpy(x.reshape(shape))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Load a temper model file into PyTorch.")
    ap.add_argument("model")
    ap.add_argument("--npy", help="inputs [N, C, H, W] float32: print the argmax of their logits")
    ap.add_argument("--save-logits", help="with --npy: write the logits [N, K] to this .npy")
    args = ap.parse_args(argv)
    import torch

    try:
        model, meta = load(args.model)
    except (OSError, ValueError) as e:
        print("temper_torch: %s" % e, file=sys.stderr)
        return 1
    print(model)
    print("parameters: %d" % sum(p.numel() for p in model.parameters()))
    for k, v in meta.items():
        print("%s: %s" % (k, v if k != "temper.arch" else json.dumps(json.loads(v))))
    if args.npy:
        with torch.no_grad():
            logits = model(model_input(model, meta, np.load(args.npy))).numpy()
        print("argmax: %s" % " ".join(str(int(k)) for k in logits.argmax(axis=1)))
        if args.save_logits:
            np.save(args.save_logits, logits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
