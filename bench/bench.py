#!/usr/bin/env python3
"""Issue #5's benchmark: our kernels next to the peers, same inputs, same run.

bf16 forward, B*S = 32768 tokens, H = 16, D = 128 (H*D = 2048, as
../shared/bench/peers.py). Variants: dense, causal, sliding window 1024
(causal), block-sparse (50% and 90% of 128x128 blocks dropped), ALiBi (causal),
soft-cap 50 (causal), 4 documents (causal). Ours: kernels compiled by
scripts/gpu/prepare.sh from bench/specs/, launched through python/attn (ctypes,
no copies). Peers: SDPA FLASH and CUDNN (dense, causal), FlexAttention under
torch.compile (every mask). FLOPs = 2*B*H*(visible pairs)*(Dqk+Dv). Each time
is the median of triton.testing.do_bench; every variant is checked against a
float32 reference on two (batch, head) slices (||out-ref||/||ref|| <= 1e-2, no
NaN). Writes bench.json and bench.png to --out.

STATUS: written 2026-11-29 without a GPU run (device time was spent); the
first GPU call of the next session should run it.
    python3 bench/bench.py --kernels gpu-kernels/bench --out OUT
"""
import argparse
import json
import math
import os
import sys

import torch
import triton.testing

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import attn  # noqa: E402

H, D, TOKENS = 16, 128, 32768


def visible_mask(variant, S, extras, device):
    i = torch.arange(S, device=device)[:, None]
    j = torch.arange(S, device=device)[None, :]
    m = torch.ones(S, S, dtype=torch.bool, device=device)
    if variant != "dense" and not variant.startswith("block"):
        m &= j <= i
    if variant == "window":
        m &= j >= i - 1023
    return m


def reference(q, k, v, variant, extras, b, h):
    """float32 attention for one (b, h), with the variant's masks and scores."""
    S = q.shape[2]
    qs, ks, vs = (t[b, h].float() for t in (q, k, v))
    s = (qs @ ks.T) / math.sqrt(D)
    if variant == "softcap":
        s = 50.0 * torch.tanh(s / 50.0)
    i = torch.arange(S, device=q.device)[:, None]
    j = torch.arange(S, device=q.device)[None, :]
    if variant == "alibi":
        s = s - extras["alibi_slopes"][h] * (i - j).abs()
    m = visible_mask(variant, S, extras, q.device)
    if variant.startswith("block"):
        bm = extras["block_mask"][0, 0].bool()
        m &= bm[i // 128, j // 128]
    if variant == "document":
        d = extras["q_doc_ids"][b]
        m &= d[:, None] == d[None, :]
    s = s.masked_fill(~m, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return p @ vs, m.sum().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seqs", default="4096,16384")
    args = ap.parse_args()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = torch.compile(flex_attention, dynamic=False)
    rows = []
    for S in [int(s) for s in args.seqs.split(",")]:
        B = TOKENS // S
        torch.manual_seed(S)
        q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        variants = ["dense", "causal", "window", "block50", "block90", "alibi", "softcap", "document"]
        for variant in variants:
            name = {"block50": "block_sparse", "block90": "block_sparse"}.get(variant, variant)
            extras = {}
            nb = S // 128
            if variant.startswith("block"):
                keep = 0.5 if variant == "block50" else 0.1
                extras["block_mask"] = (torch.rand(1, 1, nb, nb, device="cuda") < keep).to(torch.uint8)
            if variant == "document":
                doc = (torch.arange(S, device="cuda") * 4 // S).to(torch.int32)
                extras["q_doc_ids"] = doc.expand(B, S).contiguous()
                extras["kv_doc_ids"] = extras["q_doc_ids"]
            if variant == "alibi":
                extras["alibi_slopes"] = torch.tensor([2 ** (-8 * (h + 1) / H) for h in range(H)],
                                                      device="cuda", dtype=torch.float32)
            out = torch.empty_like(q)
            lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
            kernel = attn.Kernel(os.path.join(args.kernels, f"b_{name}.json"))
            tensors = {"query": q, "key": k, "value": v, "out": out, "lse": lse, **extras}
            launch_args = [tensors[r] for r in kernel.roles]
            ours_ms = triton.testing.do_bench(lambda: kernel.launch(*launch_args), quantiles=[0.5])
            ours_ms = ours_ms[0] if isinstance(ours_ms, (list, tuple)) else ours_ms
            torch.cuda.synchronize()
            errs, pairs = [], 0
            for b, h in ((0, 0), (B - 1, H - 1)):
                ref, n = reference(q, k, v, variant, extras, b, h)
                errs.append((out[b, h].float() - ref).norm().item() / max(ref.norm().item(), 1e-30))
            _, pairs_one = reference(q[:1, :1], k[:1, :1], v[:1, :1], variant, extras, 0, 0)
            pairs = pairs_one * B * H
            flops = 2 * pairs * (D + D)
            row = {"variant": variant, "S": S, "B": B, "pairs": pairs, "flops": flops,
                   "ours_ms": ours_ms, "ours_tflops": flops / ours_ms / 1e9,
                   "ours_err": max(errs), "ours_ok": max(errs) <= 1e-2 and not torch.isnan(out).any().item()}
            if variant in ("dense", "causal"):
                for peer, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                    with sdpa_kernel([be]):
                        fn = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=variant == "causal")
                        t = triton.testing.do_bench(fn, quantiles=[0.5])
                    t = t[0] if isinstance(t, (list, tuple)) else t
                    row[peer + "_tflops"] = flops / t / 1e9
            # FlexAttention for every variant.
            def mask_mod(b, h, qi, ki):
                ok = qi >= ki if variant not in ("dense",) and not variant.startswith("block") else qi >= 0
                if variant == "window":
                    ok = ok & (qi - ki < 1024)
                if variant.startswith("block"):
                    ok = extras["block_mask"][0, 0, qi // 128, ki // 128] > 0
                if variant == "document":
                    ok = ok & (extras["q_doc_ids"][b, qi] == extras["q_doc_ids"][b, ki])
                return ok
            score_mod = None
            if variant == "alibi":
                slopes = extras["alibi_slopes"]
                score_mod = lambda s, b, h, qi, ki: s - slopes[h] * (qi - ki).abs()
            if variant == "softcap":
                score_mod = lambda s, b, h, qi, ki: 50.0 * torch.tanh(s / 50.0)
            bm = create_block_mask(mask_mod, B if variant == "document" else None, None, S, S)
            fn = lambda: flex(q, k, v, score_mod=score_mod, block_mask=bm)
            fn()
            t = triton.testing.do_bench(fn, quantiles=[0.5])
            t = t[0] if isinstance(t, (list, tuple)) else t
            row["flex_tflops"] = flops / t / 1e9
            for peer in ("flash", "cudnn", "flex"):
                if peer + "_tflops" in row:
                    row["ratio_to_" + peer] = row["ours_tflops"] / row[peer + "_tflops"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                   "flop_convention": "2*B*H*(visible pairs)*(Dqk+Dv)", "rows": rows}, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        labels = [f"{r['variant']}\n{r['S']}" for r in rows]
        fig, ax = plt.subplots(figsize=(14, 5))
        for i, key in enumerate(("ours", "cudnn", "flash", "flex")):
            ax.bar([x + i * 0.2 for x in range(len(rows))], [r.get(key + "_tflops", 0) for r in rows],
                   width=0.2, label=key)
        ax.set_xticks([x + 0.3 for x in range(len(rows))], labels, fontsize=7)
        ax.set_ylabel("TFLOP/s (visible pairs)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "bench.png"), dpi=120)
    except Exception as e:  # noqa: BLE001
        print("no plot:", e)
    print("| variant | S | ours TFLOP/s | err | cuDNN | FLASH | Flex | ours/Flex |")
    for r in rows:
        print(f"| {r['variant']} | {r['S']} | {r['ours_tflops']:.1f} | {r['ours_err']:.1e} | "
              f"{r.get('cudnn_tflops', 0):.0f} | {r.get('flash_tflops', 0):.0f} | "
              f"{r.get('flex_tflops', 0):.0f} | {r.get('ratio_to_flex', 0):.2f} |")


if __name__ == "__main__":
    main()
