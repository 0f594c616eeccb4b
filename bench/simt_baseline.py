#!/usr/bin/env python3
"""Times today's portable SIMT kernels against PyTorch SDPA (FLASH, CUDNN) on
the same inputs (bf16, B=2, H=16, D=128). FLOPs: 2*B*Hq*(visible pairs)*(Dqk+Dv),
as ../shared/bench/peers.py counts them. Medians of 10 timed launches after
3 warm-ups, CUDA events on both sides. A baseline for issue #5, not a result
to be proud of: no tensor cores yet.
    python3 bench/simt_baseline.py --exec build-rt/bin/attn-exec --kernels gpu-kernels/sm_90a --out OUT
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def pairs(kind, S, window=1024):
    i = np.arange(S)
    if kind == "dense":
        return S * S
    if kind == "causal":
        return int((i + 1).sum())
    return int(np.minimum(i + 1, window).sum())


def time_torch(fn, reps=10):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exec", required=True)
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    B, H, D = 2, 16, 128
    rows = []
    for S in (1024, 4096):
        rng = np.random.default_rng(S)
        qkv = [rng.standard_normal((B, H, S, D)).astype(np.float32) for _ in range(3)]
        with tempfile.TemporaryDirectory() as work:
            for n, a in zip("qkv", qkv):
                np.save(os.path.join(work, n + ".npy"), a)
            t = [torch.tensor(a, device="cuda", dtype=torch.bfloat16) for a in qkv]
            for kind in ("dense", "causal", "window"):
                flops = 2 * B * H * pairs(kind, S) * (D + D)
                r = subprocess.run([args.exec, "--kernel", os.path.join(args.kernels, kind + ".json"),
                                    "--inputs", work, "--outputs", os.path.join(work, "o"),
                                    "--device", "cuda", "--repeat", "10"], capture_output=True, text=True)
                ours = float(r.stdout.split("median_ms=")[1]) if r.returncode == 0 else None
                row = {"variant": kind, "B": B, "H": H, "S": S, "D": D, "flops": flops,
                       "ours_ms": ours, "ours_error": r.stderr.strip()[-200:] if r.returncode else ""}
                if kind != "window":
                    for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                        with sdpa_kernel([be]):
                            row[name + "_ms"] = time_torch(lambda: torch.nn.functional.scaled_dot_product_attention(
                                *t, is_causal=kind == "causal"))
                for k in ("ours", "flash", "cudnn"):
                    if row.get(k + "_ms"):
                        row[k + "_tflops"] = flops / row[k + "_ms"] / 1e9
                rows.append(row)
                print(json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "simt_baseline.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "rows": rows}, f, indent=1)
    print("| variant | S | ours ms | ours TFLOP/s | flash TFLOP/s | cudnn TFLOP/s |")
    for r in rows:
        print(f"| {r['variant']} | {r['S']} | {r['ours_ms']} | {r.get('ours_tflops', 0):.1f} | "
              f"{r.get('flash_tflops', 0):.1f} | {r.get('cudnn_tflops', 0):.1f} |")


if __name__ == "__main__":
    main()
