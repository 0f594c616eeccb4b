#!/usr/bin/env python3
"""First-call latency on the GPU (issue #6, part 4): our PyTorch op, whose kernel
is loaded from an ahead-of-time directory, next to FlexAttention's first call
(torch.compile) for the same variant.

Each measurement runs in a fresh Python process (imports done, inputs made and
the GPU initialized before the clock starts; the clock stops after a
synchronize once the first output is ready):

- ours_eager: attn.attention(...) — kernel lookup by spec hash in --kernels,
  manifest and cubin load, first launch;
- ours_compiled: torch.compile(fullgraph=True) of a function calling
  attn.attention — Dynamo/Inductor tracing plus the above;
- flex_cold / flex_warm: create_block_mask + torch.compile(flex_attention) with
  empty Inductor/Triton caches (a fresh cache directory) and then with the
  caches that the cold run filled (a disk-cache hit).

With ATTN_FIRST_CALL_PROFILE=1, our first call runs under cProfile and the top
entries (cumulative) are printed.

bf16, B=2, H=16, S=4096, D=128; variants dense, causal, window 1024 (causal),
ALiBi (causal), soft-cap 50 (causal), 4 documents (causal): the kernels of
attn.prebuild's "first-call" set, which scripts/gpu/prepare.sh builds.

    python3 bench/first_call_latency.py --kernels gpu-kernels/torch/sm_90a --out OUT

Writes OUT/first_call_latency.json (every run) and prints a Markdown table of
medians.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ["dense", "causal", "window", "alibi", "softcap", "document"]
IMPLS = ["ours_eager", "ours_compiled", "flex_cold", "flex_warm"]
B, H, S, D = 2, 16, 4096, 128


def child(impl, variant):
    """One measurement in this (fresh) process; prints one JSON line."""
    t_import = time.perf_counter()
    import torch
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import attn
    import attn.ops  # noqa: F401 - registers the ops
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    t_import = time.perf_counter() - t_import
    # torch._dynamo is imported by the first torch.compile and by the first
    # dispatch of any torch.library custom op (~1-2.5 s): timed on its own,
    # for every implementation, so first_call_s compares the rest.
    t_dynamo = time.perf_counter()
    import torch._dynamo  # noqa: F401
    t_dynamo = time.perf_counter() - t_dynamo
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(B, H, S, D, device=dev, dtype=torch.bfloat16, generator=g)
               for _ in range(3))
    slopes = torch.tensor([2 ** (-8 * (h + 1) / H) for h in range(H)], device=dev)
    docs = (torch.arange(S, device=dev) * 4 // S).to(torch.int32).expand(B, S).contiguous()
    kw = {"dense": {}, "causal": {"causal": True},
          "window": {"causal": True, "window": (1023, 0)},
          "alibi": {"causal": True, "alibi_slopes": slopes},
          "softcap": {"causal": True, "softcap": 50.0},
          "document": {"causal": True, "doc_ids": docs}}[variant]
    torch.cuda.synchronize()

    if impl.startswith("ours"):
        def ours():
            return attn.attention(q, k, v, **kw)
        fn = torch.compile(ours, fullgraph=True) if impl == "ours_compiled" else ours
        profiler = None
        if os.environ.get("ATTN_FIRST_CALL_PROFILE"):
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        if profiler:
            # Where the first call's time goes (cumulative, top entries), on stderr.
            import io
            import pstats
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
            sys.stderr.write(text.getvalue())
        block_mask_s = 0.0
    else:
        def mask_mod(b, h, qi, ki):
            ok = qi >= ki if variant != "dense" else qi >= 0
            if variant == "window":
                ok = ok & (qi - ki <= 1023)
            if variant == "document":
                ok = ok & (docs[b, qi] == docs[b, ki])
            return ok

        score_mod = None
        if variant == "alibi":
            def score_mod(s, b, h, qi, ki):
                return s - slopes[h] * (qi - ki).abs()
        if variant == "softcap":
            def score_mod(s, b, h, qi, ki):
                return 50.0 * torch.tanh(s / 50.0)
        flex = torch.compile(flex_attention)
        t0 = time.perf_counter()
        bm = create_block_mask(mask_mod, B if variant == "document" else None, None, S, S,
                               device=dev)
        torch.cuda.synchronize()
        block_mask_s = time.perf_counter() - t0
        out = flex(q, k, v, score_mod=score_mod, block_mask=bm)
        torch.cuda.synchronize()
        first = time.perf_counter() - t0

        def fn():
            return flex(q, k, v, score_mod=score_mod, block_mask=bm)
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    second = time.perf_counter() - t0
    print(json.dumps({"impl": impl, "variant": variant, "first_call_s": first,
                      "block_mask_s": block_mask_s, "second_call_ms": second * 1e3,
                      "import_s": t_import, "dynamo_import_s": t_dynamo,
                      "nan": bool(torch.isnan(out).any().item())}))


def run_child(impl, variant, kernels, cache):
    env = dict(os.environ, ATTN_KERNEL_PATH=os.path.abspath(kernels), ATTN_COMPILE="0",
               TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"),
               TRITON_CACHE_DIR=os.path.join(cache, "triton"), PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", impl,
                        "--variant", variant], capture_output=True, text=True, env=env)
    if os.environ.get("ATTN_FIRST_CALL_PROFILE") and r.stderr:
        sys.stderr.write(f"--- profile of {impl} {variant}:\n{r.stderr[-6000:]}\n")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"impl": impl, "variant": variant, "error": (r.stderr or r.stdout).strip()[-800:]}
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", help="our AOT directory (gpu-kernels/torch/sm_90a)")
    ap.add_argument("--out")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement")
    ap.add_argument("--child")
    ap.add_argument("--variant")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.variant)
        return 0
    if not args.kernels or not args.out:
        ap.error("--kernels and --out are required")
    rows = []
    impls = args.impls.split(",")
    for variant in args.variants.split(","):
        for rep in range(args.repeats):
            # One Inductor/Triton cache per (variant, repeat): flex_cold starts it
            # empty, flex_warm reuses what flex_cold wrote; ours never compiles,
            # ours_compiled gets its own empty cache.
            with tempfile.TemporaryDirectory() as flex_cache, \
                    tempfile.TemporaryDirectory() as ours_cache:
                for impl in impls:
                    cache = flex_cache if impl.startswith("flex") else ours_cache
                    row = run_child(impl, variant, args.kernels, cache)
                    row["repeat"] = rep
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    import torch
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(os.path.join(args.out, "first_call_latency.json"), "w") as f:
        json.dump({"date": stamp, "gpu": torch.cuda.get_device_name(0),
                   "torch": torch.__version__, "shape": {"B": B, "H": H, "S": S, "D": D},
                   "dtype": "bf16", "rows": rows}, f, indent=1)
    print(f"\n| variant | {' | '.join(impls)} |")
    print("|---" * (len(impls) + 1) + "|")
    for variant in args.variants.split(","):
        cells = []
        for impl in impls:
            ts = [r["first_call_s"] for r in rows
                  if r["variant"] == variant and r["impl"] == impl and "first_call_s" in r]
            cells.append(f"{statistics.median(ts):.3f} s" if ts else "error")
        print(f"| {variant} | {' | '.join(cells)} |")
    return 1 if any("error" in r or r.get("nan") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
