#!/usr/bin/env python3
"""Issue #5's benchmark: our kernels next to the peers, on the same inputs, in one run.

bf16 forward on one GPU. Method, FLOP convention and mask definitions follow
../shared/bench/peers.py (the peers' own measurement), so rows compare with its
results:

  softmax rows   B*S = 32768 tokens, H*D = 2048 (D = 128: H = 16; D = 64: H = 32).
                 dense, causal: D = 64 and 128, S = 1k, 4k, 16k; peers SDPA FLASH,
                 SDPA CUDNN and FlexAttention (torch.compile, dynamic=False).
                 window (causal, q - k < 1024), block50 / block90 (128x128 blocks,
                 every query block keeps exactly round(nb * (1 - drop)) random key
                 blocks, not causal), alibi (causal, slope_h = 2^(-8(h+1)/H)),
                 softcap (causal, 50 tanh(s / 50)), document (4 documents from 3
                 random cut points, causal within a document): D = 128, S = 4k, 16k;
                 peer FlexAttention.
  linear rows    B = 8, H = 16, D = 128, T = 4k, 16k: gla (per-channel gates,
                 fla.ops.gla.chunk_gla) and simple_gla (one gate per head and step,
                 fla.ops.simple_gla.chunk_simple_gla); peer flash-linear-attention
                 from its source tree on --fla-path (git-ignored third_party/fla).

Ours: manifests compiled by scripts/gpu/prepare.sh from bench/specs/ into
gpu-kernels/bench, launched through python/attn (Kernel(manifest).launch on the
torch tensors, no copies; the tensors are bound to the kernel's argument roles).

FLOPs (identical for ours and every peer of a row; written into the JSON):
  softmax: 2 * B * Hq * E * (Dqk + Dv), E = Sq*Sk dense, Sq*Sk/2 causal, causal
           ALiBi and causal soft-cap (peers.py's "causal_half"; the exact count
           S(S+1)/2 is in pairs_exact), the exact number of unmasked (q, k) pairs
           for window, block-sparse and document masks.
  linear:  nominal chunkwise count as peers.py: B*H*T*(2*C*(Dk+Dv) + 4*Dk*Dv), C = 64.

Timing: triton.testing.do_bench (CUDA events, L2 flushed before each repetition),
its median; each row repeats the measurement --reps times (default 3), interleaved
ours / peer / peer / ..., and reports the median of the repetitions. First calls
(module load, torch.compile, FLA's Triton autotuning) happen before any timing.

Correctness: each implementation's output on the timed inputs against a float32
reference (TF32 off) on two (batch, head) slices, ||out - ref|| / ||ref|| in
float64 (as peers.py); FAIL above --tol (1e-2) or on any NaN/Inf anywhere in the
output. Our outputs are pre-filled with NaN, so unwritten elements fail too.

Ceilings: 2 GiB device copy (bytes read + written), torch.sum read, 8192^3 bf16
matmul, at the start and again at the end of the run.

Robust: every implementation of every row runs under try/except; an error is
recorded in its cell and the run goes on. A CUDA error that breaks the context
(illegal address) marks the remaining rows skipped. The JSON is rewritten after
each row, so a killed run still leaves its rows. Rows past --budget-s are skipped.

Writes OUT/bench.json, OUT/bench.md (table) and OUT/bench.png.
On the GPU machine, after scripts/gpu/prepare.sh here (see bench/run_gpu.sh):
    bash bench/run_gpu.sh OUT                       # everything, ~7 min
    python3 bench/bench.py --out OUT --only dense,causal --seq 4096
    python3 bench/bench.py --out OUT --only linear
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

SOFTMAX = ["dense", "causal", "window", "block50", "block90", "alibi", "softcap", "document"]
MASKED = SOFTMAX[2:]
LINEAR = ["gla", "simple_gla"]
# Decoding: one query row per (batch, query head) against a long KV cache, GQA
# 32 / 8 heads, D = 128: memory-bound (K and V are read once), not in "all".
DECODE = ["decode"]
DECODE_HEADS = (32, 8)
GROUPS = {"all": SOFTMAX + LINEAR, "softmax": SOFTMAX, "masked": MASKED, "linear": LINEAR,
          "decode": DECODE}
PEERS = ["flash", "cudnn", "flex", "fla"]
FLA_CHUNK = 64
# Where every tensor lives. Only test/python/test_bench_cpu.py changes it (to
# "cpu", with our launch emulated and the timer replaced), to run the whole
# harness without a GPU.
DEVICE = "cuda"

# Our kernel (manifest name in --kernels) per variant and head dim.
SPEC = {("dense", 128): "b_dense", ("dense", 64): "b_dense_d64",
        ("causal", 128): "b_causal", ("causal", 64): "b_causal_d64",
        ("window", 128): "b_window", ("block50", 128): "b_block_sparse",
        ("block90", 128): "b_block_sparse", ("alibi", 128): "b_alibi",
        ("softcap", 128): "b_softcap", ("document", 128): "b_document",
        ("gla", 128): "b_gla", ("simple_gla", 128): "b_simple_gla", ("decode", 128): "b_decode"}
# The same variant's name in ../shared/bench/peers.py's flex section.
PEERS_NAME = {"dense": "full", "causal": "causal", "window": "swa1024",
              "block50": "blocksparse50", "block90": "blocksparse90", "alibi": "alibi_causal",
              "softcap": "softcap50_causal", "document": "document4_causal",
              "gla": "fla.chunk_gla", "simple_gla": "fla.chunk_simple_gla",
              "decode": "(not in peers.py)"}

CONVENTIONS = {
    "dtype": "bfloat16 inputs/outputs; float32 accumulation; our gates float32 (the spec's type), "
             "FLA's gates bfloat16 with the same values",
    "timing": "triton.testing.do_bench median (CUDA events, L2 flushed before each repetition); "
              "each row: --reps measurements interleaved across implementations, median of them",
    "flops_softmax": "2*B*Hq*E*(Dqk+Dv); E = Sq*Sk dense, Sq*Sk/2 causal / causal ALiBi / causal "
                     "soft-cap (peers.py causal_half), exact unmasked (q,k) count for window, "
                     "block-sparse, document (pairs_exact gives the exact count for every row)",
    "flops_linear": "nominal chunkwise count, as peers.py fla_flops: B*H*T*(2*C*(Dk+Dv) + 4*Dk*Dv), "
                    "C = 64, the same for ours and FLA",
    "bytes_linear": "q, k, v read + o written once, 2 bytes/element, + gates at 2 bytes/element "
                    "(peers.py fla_bytes; ours reads f32 gates, i.e. more than this)",
    "rel_err": "||out-ref||/||ref|| (float64) over two (b,h) slices {(0,0),(B-1,H-1)} of the timed "
               "inputs; ref = float32 math (TF32 off); FAIL above tol or on any non-finite output",
    "ratio_to_X": "X's median time / ours (> 1: ours faster); same FLOPs on both sides",
    "sliding_window": "causal and q - k < 1024 (ours: causal + window left 1023, right 0)",
    "block_sparse": "128x128 blocks; each query block keeps exactly round(nb*(1-drop)) random key "
                    "blocks (at least 1), torch.Generator seed 7*seed + S + keep; not causal",
    "document": "4 documents per sequence, cut points random.Random(11*seed + S).sample("
                "range(S//16, S - S//16), 3); causal within a document; same for every batch",
    "alibi": "causal; score + slope_h*(k - q), slope_h = 2^(-8(h+1)/H) (ours: s - slope*|q - k|)",
    "softcap": "causal; 50*tanh(s/50) with s = q.k/sqrt(D)",
    "linear_math": "S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T (gla; scalar exp(g_t) for simple_gla), "
                   "S_0 = 0, o_t = D^-0.5 q_t^T S_t (current token included); g natural-log decays "
                   "logsigmoid(randn)/16 rounded to bf16",
    "pct_matmul": "TFLOP/s / matmul ceiling of this run",
}


def log(*a):
    print(*a, flush=True)


def parse_ints(s):
    return [int(x) for x in str(s).split(",") if x.strip()]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default=os.path.join(REPO, "gpu-kernels", "bench"),
                    help="folder of our compiled manifests (scripts/gpu/prepare.sh)")
    ap.add_argument("--ab-kernels", default=None, metavar="DIR",
                    help="a second folder of our manifests, timed as 'ours_b' in the same rounds as "
                         "--kernels (the round's order alternates), for A/Bs that the GPU's drift "
                         "between separate runs would swamp; the table adds ours_b and ours/ours_b")
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench-out", help="output folder")
    ap.add_argument("--only", default="all",
                    help="comma list of variants (%s) or groups (%s)" % (",".join(SOFTMAX + LINEAR),
                                                                         ",".join(GROUPS)))
    ap.add_argument("--seq", type=parse_ints, default=None,
                    help="sequence lengths to run (default: 1024,4096,16384 for dense/causal, "
                         "4096,16384 for the others)")
    ap.add_argument("--head-dims", type=parse_ints, default=[128, 64],
                    help="head dims for dense/causal (the other variants are D=128 only)")
    ap.add_argument("--peers", default=",".join(PEERS), help="peers to run: " + ",".join(PEERS) + ", or none (ours only)")
    ap.add_argument("--no-ours", action="store_true", help="peers only")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions per row (median)")
    ap.add_argument("--paired-dense", action=argparse.BooleanOptionalAction, default=True,
                    help="masked softmax rows also time our dense kernel on the same inputs in the "
                         "same rounds (ours_dense), for a %% of dense that the GPU clock's drift "
                         "between rows does not move (default on)")
    ap.add_argument("--graphs", action="store_true",
                    help="time every implementation as one CUDA graph replay (captured after the "
                         "correctness check; an implementation that cannot be captured is timed "
                         "eagerly and says why): the launch cost of a served decoding step, not "
                         "the host's Python and dispatch time, which eager do_bench includes "
                         "where a call's GPU work is short")
    ap.add_argument("--packed-qkv", action="store_true",
                    help="softmax rows: q, k and v are views of one [B, S, 3, H, D] projection "
                         "(stride(S) = 3*H*D) for every implementation; ours reads them in place "
                         "(the Hopper kernels' any_strides) and 'ours_copy' times the copy into "
                         "the kernel's layout first (what the binding did before session 23)")
    ap.add_argument("--tol", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=1234, help="as peers.py (masks depend on it)")
    ap.add_argument("--budget-s", type=float, default=400.0,
                    help="rows that would start past this many seconds are skipped")
    ap.add_argument("--ceilings", choices=["both", "start", "none"], default="both")
    ap.add_argument("--copy-gib", type=float, default=2.0)
    ap.add_argument("--tokens", type=int, default=32768, help="B*S for softmax rows")
    ap.add_argument("--model-dim", type=int, default=2048, help="H*D for softmax rows")
    ap.add_argument("--linear-batch", type=int, default=8)
    ap.add_argument("--decode-batch", type=int, default=4,
                    help="decode rows: batch (one query row each, 32 query / 8 KV heads, D=128)")
    ap.add_argument("--linear-heads", type=int, default=16)
    ap.add_argument("--fla-path", default=os.path.join(REPO, "third_party", "fla"),
                    help="folder holding flash-linear-attention's fla/ package")
    ap.add_argument("--binding-kernels", default=os.path.join(REPO, "gpu-kernels", "torch", "sm_90a"),
                    help="kernel directory of the PyTorch binding's calls (decode rows: "
                         "attn.attention; scripts/gpu/prepare.sh prebuilds it)")
    ap.add_argument("--lib", default=None, help="libattn_runtime.so (default: $ATTN_RUNTIME_LIB, "
                                                "build/lib, build-rt/lib)")
    ap.add_argument("--render", metavar="BENCH_JSON", default=None,
                    help="no GPU: rewrite bench.md and bench.png in --out from a recorded bench.json "
                         "(a run whose table and plot did not come back)")
    args = ap.parse_args(argv)
    variants = []
    for name in args.only.split(","):
        name = name.strip()
        if not name:
            continue
        if name in GROUPS:
            variants += GROUPS[name]
        elif name in SOFTMAX + LINEAR + DECODE:
            variants.append(name)
        else:
            ap.error(f"--only: unknown variant or group {name!r}")
    args.variants = [v for v in SOFTMAX + LINEAR + DECODE if v in variants]
    args.peer_set = {p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"}
    bad = args.peer_set - set(PEERS)
    if bad:
        ap.error(f"--peers: unknown {','.join(sorted(bad))}")
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    return args


def plan_rows(args):
    """(variant, S, D) in run order: dense/causal D=128, masked, linear, dense/causal D=64."""
    def seqs(default):
        return args.seq if args.seq else default
    rows = []
    for D in sorted(args.head_dims, reverse=True):
        if D not in (64, 128):
            continue
        block = []
        for S in seqs([1024, 4096, 16384]):
            for v in ("dense", "causal"):
                if v in args.variants:
                    block.append((v, S, D))
        if D == 128:
            rows += block
            for S in seqs([4096, 16384]):
                for v in MASKED:
                    if v in args.variants:
                        rows.append((v, S, 128))
            for S in seqs([4096, 16384]):
                for v in LINEAR:
                    if v in args.variants:
                        rows.append((v, S, 128))
        else:
            rows += block
    if 128 not in args.head_dims:  # masked and linear rows are D=128 only, still run them
        for S in seqs([4096, 16384]):
            rows += [(v, S, 128) for v in MASKED + LINEAR if v in args.variants]
    if "decode" in args.variants:  # S: the KV cache's length
        rows += [("decode", S, 128) for S in seqs([8192, 32768])]
    return rows


# ----------------------------------------------------------------------------- torch parts
# Everything below imports torch lazily, so that --help works without it.

def sync():
    import torch
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def empty_cache():
    import torch
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def time_fn(fn, min_rep_ms=30.0, max_rep_ms=300.0, target_iters=20, warmup_ms=10.0):
    """(p20, median, p80) ms of fn by triton.testing.do_bench; the repetition window is
    sized from one timed call (peers.py's time_fn with a shorter window: the row is
    repeated --reps times anyway)."""
    import torch
    from triton.testing import do_bench
    sync()
    st = torch.cuda.Event(enable_timing=True)
    en = torch.cuda.Event(enable_timing=True)
    st.record()
    fn()
    en.record()
    sync()
    est = max(st.elapsed_time(en), 1e-3)
    rep = min(max(min_rep_ms, target_iters * est), max_rep_ms)
    r = do_bench(fn, warmup=max(warmup_ms, est), rep=rep, quantiles=[0.2, 0.5, 0.8])
    if not isinstance(r, (list, tuple)):
        r = [r, r, r]
    return float(r[0]), float(r[1]), float(r[2])


def graphed(fn):
    """fn captured as a CUDA graph: a function replaying it (returning what the
    captured call returned). Warmed up on the capture stream first, so that
    whatever a launch sets up once per stream (the runtime's tile counter) is
    not allocated during the capture."""
    import torch
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    sync()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = fn()
    sync()

    def replay():
        graph.replay()
        return out
    return replay


def rel_err(outs, refs):
    """sqrt(sum ||o-r||^2 / sum ||r||^2) in float64; nan if any o is non-finite (peers.py)."""
    import torch
    num = den = 0.0
    for o, r in zip(outs, refs):
        o = o.detach().double()
        r = r.detach().double()
        if not bool(torch.isfinite(o).all()):
            return float("nan")
        num += float((o - r).pow(2).sum())
        den += float(r.pow(2).sum())
    return math.sqrt(num / den) if den > 0 else float("nan")


def ref_attn(q, k, v, scale, mask_fn=None, score_fn=None, b=0, h=0, chunk=4096):
    """float32 softmax attention for one (b, h) (peers.py's ref_attn): q [Sq,D], k [Sk,D],
    v [Sk,Dv]; mask_fn / score_fn have FlexAttention's mask_mod / score_mod signatures."""
    import torch
    q, k, v = q.float(), k.float(), v.float()
    Sq, Sk = q.shape[0], k.shape[0]
    out = torch.empty(Sq, v.shape[1], dtype=torch.float32, device=q.device)
    kv_idx = torch.arange(Sk, device=q.device)[None, :]
    bt = torch.tensor(b, device=q.device)
    ht = torch.tensor(h, device=q.device)
    for r0 in range(0, Sq, chunk):
        r1 = min(Sq, r0 + chunk)
        s = (q[r0:r1] @ k.T) * scale
        q_idx = torch.arange(r0, r1, device=q.device)[:, None]
        if score_fn is not None:
            s = score_fn(s, bt, ht, q_idx, kv_idx)
        if mask_fn is not None:
            s = s.masked_fill(~mask_fn(bt, ht, q_idx, kv_idx), float("-inf"))
        out[r0:r1] = torch.softmax(s, dim=-1) @ v
    return out


def ref_linear(q, k, v, g, scale):
    """float32 recurrence (peers.py's ref_linear): q, k [P,T,K], v [P,T,V],
    g None | [P,T,K] | [P,T] natural-log decays. S_t = exp(g_t) S_{t-1} + k_t v_t^T,
    o_t = scale q_t^T S_t."""
    import torch
    q, k, v = q.float(), k.float(), v.float()
    P, T, K = q.shape
    st = torch.zeros(P, K, v.shape[-1], dtype=torch.float32, device=q.device)
    out = torch.empty(P, T, v.shape[-1], dtype=torch.float32, device=q.device)
    if g is not None:
        g = g.float().exp()
    for t in range(T):
        if g is not None:
            d = g[:, t]
            st = st * (d[:, :, None] if d.dim() == 2 else d[:, None, None])
        st = st + k[:, t, :, None] * v[:, t, None, :]
        out[:, t] = torch.einsum("pk,pkv->pv", q[:, t] * scale, st)
    return out


def count_entries(mask_fn, Sq, Sk, rows=1024):
    """Exact number of (q, k) pairs mask_fn keeps (b = h = 0), as peers.py."""
    import torch
    kv = torch.arange(Sk, device=DEVICE)[None, :]
    z = torch.tensor(0, device=DEVICE)
    total = 0
    for r0 in range(0, Sq, rows):
        q = torch.arange(r0, min(Sq, r0 + rows), device=DEVICE)[:, None]
        total += int(mask_fn(z, z, q, kv).sum())
    return total


def _finite(x):
    """NaN / Inf as strings, so that bench.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def check_pairs(B, H):
    return sorted({(0, 0), (B - 1, H - 1)})


def sdpa_impls(peer_set, q, k, v, slices_of, **kwargs):
    """PyTorch SDPA's cuDNN and FLASH back ends (those in peer_set) as bench
    implementations on q, k, v (`kwargs`: is_causal, enable_gqa)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    impls = {}
    for peer, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        if peer not in peer_set:
            continue

        def sdpa_setup(be=be):
            def fn():
                with sdpa_kernel([be]):
                    return F.scaled_dot_product_attention(q, k, v, **kwargs)
            return fn, {}
        impls[peer] = (sdpa_setup, lambda out: (out, slices_of(out)))
    return impls


def nvsmi():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"nvidia-smi failed: {e}"


def softmax_variant(name, S, H, seed, device=None):
    """mask_fn, score_fn, FLOP rule, description, extra tensors of our kernel: the same
    definitions as peers.py's flex_variant (same seeds, so the same random masks)."""
    import torch
    device = device or DEVICE
    extras = {}

    def causal(b, h, q, kv):
        return q >= kv
    if name == "dense":
        return None, None, "dense", "no mask", extras
    if name == "causal":
        return causal, None, "causal_half", "causal", extras
    if name == "window":
        W = 1024

        def swa(b, h, q, kv):
            return (q >= kv) & (q - kv < W)
        return swa, None, "exact", f"causal, q-k<{W}", extras
    if name in ("block50", "block90"):
        drop = 0.5 if name == "block50" else 0.9
        nb = S // 128
        keep_n = max(1, round(nb * (1.0 - drop)))
        gen = torch.Generator().manual_seed(seed * 7 + S + keep_n)
        cols = torch.rand(nb, nb, generator=gen).argsort(dim=1)[:, :keep_n]
        keep = torch.zeros(nb, nb, dtype=torch.bool)
        keep.scatter_(1, cols, True)
        keep_flat = keep.flatten().to(device)
        # ours: u8 [1, 1, ceil(S/128), ceil(S/128)], broadcast over batch and heads.
        extras["block_mask"] = keep.to(torch.uint8).reshape(1, 1, nb, nb).to(device)

        def bsparse(b, h, q, kv):
            return keep_flat[(q // 128) * nb + (kv // 128)]
        return bsparse, None, "exact", f"random, {keep_n}/{nb} key blocks kept per query block", extras
    if name == "alibi":
        slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / H) for i in range(H)], dtype=torch.float32,
                              device=device)
        extras["alibi_slopes"] = slopes  # ours: s - slope[h] * |q - k|, equal under causal

        def alibi(score, b, h, q, kv):
            return score + slopes[h] * (kv - q)
        return causal, alibi, "causal_half", "causal, slope_h = 2^(-8(h+1)/H)", extras
    if name == "softcap":
        cap = 50.0

        def softcap(score, b, h, q, kv):
            return cap * torch.tanh(score / cap)
        return causal, softcap, "causal_half", "causal, cap*tanh(s/cap), cap=50", extras
    if name == "document":
        ndoc = 4
        rng = random.Random(seed * 11 + S)
        cuts = sorted(rng.sample(range(S // 16, S - S // 16), ndoc - 1))
        doc = torch.zeros(S, dtype=torch.int32)
        for c in cuts:
            doc[c:] += 1
        doc = doc.to(device)
        extras["doc"] = doc  # expanded to [B, S] per row

        def document(b, h, q, kv):
            return (doc[q] == doc[kv]) & (q >= kv)
        lens = [b - a for a, b in zip([0] + cuts, cuts + [S])]
        return document, None, "exact", f"causal within doc, lengths {lens}", extras
    raise ValueError(name)


class Bench:
    def __init__(self, args):
        self.args = args
        self.t0 = time.time()
        self.rows = []
        self.meta = {}
        self.ceil = {}
        self.kernels = {}
        self.broken = None
        self.fla = None
        self.fla_tuned = set()
        self.flex_c = None
        os.makedirs(args.out, exist_ok=True)

    def elapsed(self):
        return time.time() - self.t0

    # -- output
    def write(self):
        doc = _finite({"meta": self.meta, "conventions": CONVENTIONS, "ceilings": self.ceil,
                       "elapsed_s": round(self.elapsed(), 1), "rows": self.rows})
        path = os.path.join(self.args.out, "bench.json")
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f, indent=1, default=str)
        os.replace(path + ".tmp", path)

    # -- environment
    def env(self):
        import torch
        import triton
        if DEVICE == "cuda":
            p = torch.cuda.get_device_properties(0)
            gpu, sms = p.name, p.multi_processor_count
        else:
            gpu, sms = DEVICE, 0
        m = {"argv": sys.argv, "torch": torch.__version__, "cuda": torch.version.cuda,
             "cudnn": torch.backends.cudnn.version(), "triton": triton.__version__,
             "python": sys.version.split()[0], "gpu": gpu, "sm_count": sms,
             "nvidia_smi_start": nvsmi(), "time_start": time.strftime("%Y-%m-%d %H:%M:%S"),
             "kernels": os.path.abspath(self.args.kernels), "tol": self.args.tol,
             "reps": self.args.reps, "seed": self.args.seed}
        if self.args.ab_kernels:
            m["ab_kernels"] = os.path.abspath(self.args.ab_kernels)
        try:
            m["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                         text=True, timeout=10).stdout.strip() or os.environ.get("ATTN_COMMIT", "")
        except Exception:  # noqa: BLE001
            m["commit"] = os.environ.get("ATTN_COMMIT", "")
        # The compiler commit the kernels were built from (scripts/gpu/prepare.sh
        # writes gpu-kernels/COMMIT, "-dirty" when lib/, include/ or tools/ had
        # uncommitted changes): the GPU machine's git metadata can lag the
        # carried working tree, so "commit" alone may name an older tree.
        try:
            with open(os.path.join(os.path.dirname(os.path.abspath(self.args.kernels)), "COMMIT")) as f:
                m["kernels_commit"] = f.read().strip()
        except OSError:
            m["kernels_commit"] = ""
        try:
            with open(os.path.join(self.args.fla_path, "COMMIT")) as f:
                m["fla_commit"] = f.read().strip()
        except OSError:
            m["fla_commit"] = ""
        self.meta = m
        log(json.dumps(m, indent=1, default=str))

    # -- ceilings (peers.py's, same sizes)
    def ceilings(self, tag=""):
        import torch
        wu = 300.0
        try:
            n = int(self.args.copy_gib * 2**30) // 2
            src = torch.randn(n, dtype=torch.bfloat16, device=DEVICE)
            dst = torch.empty_like(src)
            _, med, _ = time_fn(lambda: dst.copy_(src), warmup_ms=wu, max_rep_ms=500)
            self.ceil["copy_gbps" + tag] = 4 * n / (med * 1e-3) / 1e9
            _, med, _ = time_fn(lambda: src.sum(dtype=torch.float32), warmup_ms=wu, max_rep_ms=500)
            self.ceil["read_gbps" + tag] = 2 * n / (med * 1e-3) / 1e9
            src = dst = None  # free before the matmul
        except Exception as e:  # noqa: BLE001
            self.ceil["copy_error" + tag] = f"{type(e).__name__}: {e}"[:300]
        try:
            N = 8192
            x = torch.randn(N, N, dtype=torch.bfloat16, device=DEVICE)
            y = torch.randn(N, N, dtype=torch.bfloat16, device=DEVICE)
            _, med, _ = time_fn(lambda: torch.matmul(x, y), warmup_ms=wu, max_rep_ms=500)
            self.ceil["matmul_tflops" + tag] = 2 * N ** 3 / (med * 1e-3) / 1e12
            x = y = None
        except Exception as e:  # noqa: BLE001
            self.ceil["matmul_error" + tag] = f"{type(e).__name__}: {e}"[:300]
        empty_cache()
        self.ceil["nvidia_smi" + tag] = nvsmi()
        log(f"CEILINGS{tag}: {json.dumps(self.ceil)}")
        self.write()

    # -- our kernels
    def kernel(self, name, folder=None):
        folder = folder or self.args.kernels
        if (folder, name) not in self.kernels:
            import attn
            k = attn.Kernel(os.path.join(folder, name + ".json"), library=self.args.lib)
            self.meta.setdefault("attn_runtime_lib", getattr(attn.load_library(self.args.lib), "_name", ""))
            info = {}
            try:
                with open(os.path.join(folder, name + ".json")) as f:
                    man = json.load(f)
                info = {key: man.get(key) for key in ("kernel", "tiles", "ptxas", "sha256", "chip", "launch")}
            except Exception:  # noqa: BLE001
                pass
            self.kernels[(folder, name)] = (k, info)
        return self.kernels[(folder, name)]

    def ours_fn(self, name, tensors, folder=None):
        """Binds tensors to the kernel's roles (the kernel from `folder`, default --kernels);
        returns (launch fn, manifest info)."""
        import torch
        k, info = self.kernel(name, folder)
        roles = k.roles
        # The dynamic scheduler's tile counter (a trailing role) is left to the runtime,
        # which keeps one per stream and zeroes it (cuMemsetD32Async) before every launch:
        # that memset is in the timed region, as it is in every real launch.
        bound = [r for r in roles if r != "tile_counter"]
        missing = [r for r in bound if r not in tensors]
        if missing:
            raise KeyError(f"{name}: no tensor for argument role(s) {missing} (roles {roles})")
        launch_args = [tensors[r] for r in bound]

        def fn():
            # The current stream at each call: a CUDA graph (--graphs) captures on its own.
            k.launch(*launch_args,
                     stream=torch.cuda.current_stream().cuda_stream if DEVICE == "cuda" else 0)
        return fn, dict(info, roles=roles)

    # -- FLA
    def import_fla(self):
        """flash-linear-attention from --fla-path: first with fla, fla.ops, ... registered as
        bare packages (their __init__ files import every op and transformers), then as a
        normal import (what worked in peers.py's run 1)."""
        if self.fla is not None:
            return self.fla
        path = os.path.abspath(self.args.fla_path)
        if not os.path.isdir(os.path.join(path, "fla")):
            self.fla = f"no fla/ package under {path}"
            return self.fla
        if path not in sys.path:
            sys.path.insert(0, path)
        errors = []
        for mode in ("stubbed", "normal"):
            t0 = time.perf_counter()
            try:
                for m in [m for m in sys.modules if m == "fla" or m.startswith("fla.")]:
                    del sys.modules[m]
                if mode == "stubbed":
                    for pkg in ("fla", "fla.ops", "fla.modules", "fla.layers", "fla.models"):
                        mod = types.ModuleType(pkg)
                        mod.__path__ = [os.path.join(path, *pkg.split("."))]
                        sys.modules[pkg] = mod
                        if pkg == "fla":  # fla.utils imports fla.__version__
                            with open(os.path.join(path, "fla", "__init__.py")) as f:
                                init = f.read()
                            ver = [ln.split("=", 1)[1].strip().strip("\"'") for ln in init.splitlines()
                                   if ln.startswith("__version__")]
                            mod.__version__ = ver[0] if ver else "0"
                        if "." in pkg:
                            parent, child = pkg.rsplit(".", 1)
                            setattr(sys.modules[parent], child, mod)
                from fla.ops.gla import chunk_gla
                from fla.ops.simple_gla import chunk_simple_gla
                self.meta["fla_import"] = f"{mode} ({time.perf_counter() - t0:.1f} s)"
                self.fla = {"gla": chunk_gla, "simple_gla": chunk_simple_gla}
                return self.fla
            except Exception as e:  # noqa: BLE001
                errors.append(f"{mode}: {type(e).__name__}: {e}")
                log(f"fla import ({mode}) failed: {type(e).__name__}: {e}")
                log("\n".join(traceback.format_exc().strip().splitlines()[-6:]))
        self.fla = "fla import failed: " + " | ".join(errors)
        self.meta["fla_import"] = self.fla
        return self.fla

    # -- one row
    def run_row(self, variant, S, D):
        a = self.args
        linear = variant in LINEAR
        row = {"variant": variant, "peers_py_name": PEERS_NAME[variant], "S": S, "D": D, "Dv": D,
               "impls": {}}
        if linear:
            row.update(group="linear", B=a.linear_batch, H=a.linear_heads)
        elif variant in DECODE:
            row.update(group="decode", B=a.decode_batch, H=DECODE_HEADS[0], Hkv=DECODE_HEADS[1],
                       Sq=1)
        else:
            H = a.model_dim // D
            row.update(group="softmax", B=max(1, a.tokens // S), H=H)
        need = 30.0
        if linear and "fla" in a.peer_set and variant not in self.fla_tuned:
            need = 150.0  # FLA's first call autotunes (35-95 s in peers.py's run)
        if self.broken:
            row["status"] = f"skipped: CUDA context broken earlier ({self.broken})"
        elif self.elapsed() + need > a.budget_s:
            row["status"] = f"skipped: time budget ({self.elapsed():.0f} s + ~{need:.0f} s > {a.budget_s:.0f} s)"
        else:
            row["status"] = "ok"
            t0 = time.time()
            try:
                (self.linear_row if linear else
                 self.decode_row if variant in DECODE else self.softmax_row)(row)
            except Exception as e:  # noqa: BLE001
                row["status"] = "error"
                row["error"] = f"{type(e).__name__}: {e}"[:500]
                log("\n".join(traceback.format_exc().strip().splitlines()[-8:]))
                self.check_context(f"{variant} S={S} D={D}")
            row["wall_s"] = round(time.time() - t0, 1)
        self.finish_row(row)
        self.rows.append(row)
        self.write()
        log(self.fmt_row(row))
        import torch
        empty_cache()

    def check_context(self, where):
        try:
            sync()
        except Exception as e:  # noqa: BLE001
            self.broken = f"{where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            log(f"!! CUDA context broken: {self.broken}")

    def measure(self, row, impls, reference):
        """impls: name -> (setup, outputs): setup() -> (fn, info) does the untimed preparation
        (tensor binding, torch.compile, block masks); outputs(fn()) -> (full output, the
        (b, h) slices matching `reference`). First call + correctness for each, then --reps
        rounds of timings, each round timing every implementation once (interleaved)."""
        import torch
        a = self.args
        fns = {}
        for name, (setup, outputs, *own_reference) in impls.items():
            cell = row["impls"].setdefault(name, {})
            try:
                fn, info = setup()
                if info:
                    cell.update(info)
                t0 = time.perf_counter()
                res = fn()
                sync()
                cell["first_call_s"] = round(time.perf_counter() - t0, 3)
                full, slices = outputs(res)
                finite = bool(torch.isfinite(full).all())
                err = rel_err(slices, own_reference[0] if own_reference else reference)
                cell["rel_err"] = err
                cell["finite"] = finite
                cell["status"] = "ok" if finite and math.isfinite(err) and err <= a.tol else "FAIL"
                del res, full, slices
                fns[name] = fn
                if a.graphs and DEVICE == "cuda":
                    try:
                        fns[name] = graphed(fn)
                        cell["timing"] = "cuda graph"
                    except Exception as e:  # noqa: BLE001
                        cell["timing"] = "eager"
                        cell["graph_error"] = f"{type(e).__name__}: {e}"[:300]
                        log(f"  !! {name}: no CUDA graph ({cell['graph_error']}); timed eagerly")
            except Exception as e:  # noqa: BLE001
                cell["status"] = "error"
                cell["error"] = f"{type(e).__name__}: {e}"[:500]
                log(f"  !! {row['variant']} S={row['S']} D={row['D']} {name}: {cell['error']}")
                log("\n".join(traceback.format_exc().strip().splitlines()[-6:]))
                self.check_context(f"{row['variant']} S={row['S']} {name}")
                if self.broken:
                    return
        for rep in range(a.reps):
            order = list(fns.items())
            if a.ab_kernels and rep % 2:
                order.reverse()  # an A/B: neither side always runs first in a round
            for name, fn in order:
                cell = row["impls"][name]
                if cell.get("status") == "error":
                    continue
                try:
                    p20, med, p80 = time_fn(fn)
                    cell.setdefault("ms_reps", []).append(med)
                    cell.setdefault("p20_p80_reps", []).append([p20, p80])
                except Exception as e:  # noqa: BLE001
                    cell["status"] = "error"
                    cell["error"] = f"timing rep {rep}: {type(e).__name__}: {e}"[:500]
                    self.check_context(f"{row['variant']} S={row['S']} {name} timing")
                    if self.broken:
                        return

    def softmax_row(self, row):
        import torch
        a = self.args
        variant, S, D, B, H = row["variant"], row["S"], row["D"], row["B"], row["H"]
        mask_fn, score_fn, rule, desc, extras = softmax_variant(variant, S, H, a.seed)
        row["mask"] = desc
        if rule == "dense":
            entries = S * S
            row["pairs_exact"] = S * S
        elif rule == "causal_half":
            entries = S * S / 2
            row["pairs_exact"] = S * (S + 1) // 2
        else:
            entries = count_entries(mask_fn, S, S)
            row["pairs_exact"] = entries
        row["entries"] = entries
        row["entries_frac"] = entries / (S * S)
        row["flops"] = 2 * B * H * entries * (D + D)
        row["flop_rule"] = rule
        torch.manual_seed(a.seed * 1000 + (zlib.crc32(f"{variant}/{S}/{D}".encode()) & 0xFFFF))
        if a.packed_qkv:
            qkv = torch.randn(B, S, 3, H, D, dtype=torch.bfloat16, device=DEVICE)
            q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
            row["packed_qkv"] = True
        else:
            q = torch.randn(B, H, S, D, dtype=torch.bfloat16, device=DEVICE)
            k = torch.randn(B, H, S, D, dtype=torch.bfloat16, device=DEVICE)
            v = torch.randn(B, H, S, D, dtype=torch.bfloat16, device=DEVICE)
        pairs = check_pairs(B, H)
        reference = [ref_attn(q[b, h], k[b, h], v[b, h], D ** -0.5, mask_fn=mask_fn, score_fn=score_fn,
                              b=b, h=h) for (b, h) in pairs]

        def slices_of(out):
            return [out[b, h] for (b, h) in pairs]

        impls = {}
        if not a.no_ours:
            def ours_setup(folder=None, spec=SPEC[(variant, D)], copy=False):
                # bhsd specs: out (and q, k, v unless the kernel reads them only by
                # TMA) contiguous [B, H, S, D]. `copy`: q, k, v copied into that
                # layout inside the timed launch, as a caller whose kernel cannot
                # read its views must.
                out = torch.empty(B, H, S, D, dtype=torch.bfloat16, device=DEVICE).fill_(float("nan"))
                lse = torch.full((B, H, S), float("nan"), dtype=torch.float32, device=DEVICE)
                dense = [torch.empty(B, H, S, D, dtype=torch.bfloat16, device=DEVICE) for _ in range(3)] \
                    if copy else [q, k, v]
                tensors = {"query": dense[0], "key": dense[1], "value": dense[2], "out": out, "lse": lse}
                if spec == SPEC[(variant, D)]:  # the mask's tensors (not ours_dense's)
                    if "block_mask" in extras:
                        tensors["block_mask"] = extras["block_mask"]
                    if "doc" in extras:
                        ids = extras["doc"].expand(B, S).contiguous()
                        tensors["q_doc_ids"] = ids
                        tensors["kv_doc_ids"] = ids
                    if "alibi_slopes" in extras:
                        tensors["alibi_slopes"] = extras["alibi_slopes"]
                launch, info = self.ours_fn(spec, tensors, folder)

                def fn():
                    if copy:
                        for dst, src in zip(dense, (q, k, v)):
                            dst.copy_(src)
                    launch()
                    return out
                return fn, dict(info, spec=spec)
            impls["ours"] = (ours_setup, lambda out: (out, slices_of(out)))
            if a.packed_qkv:
                impls["ours_copy"] = (lambda: ours_setup(copy=True), lambda out: (out, slices_of(out)))
            if a.ab_kernels:
                impls["ours_b"] = (lambda: ours_setup(a.ab_kernels), lambda out: (out, slices_of(out)))
            if a.paired_dense and variant in MASKED and ("dense", D) in SPEC:
                # Our dense kernel on the same inputs, in the same rounds (checked
                # against the unmasked reference): the masked row's % of dense per
                # round, which the clock's drift between rows does not move.
                dense_reference = [ref_attn(q[b, h], k[b, h], v[b, h], D ** -0.5, b=b, h=h)
                                   for (b, h) in pairs]
                impls["ours_dense"] = (lambda: ours_setup(spec=SPEC[("dense", D)]),
                                       lambda out: (out, slices_of(out)), dense_reference)
                row["dense_flops"] = 2 * B * H * S * S * (D + D)
        if variant in ("dense", "causal"):
            impls.update(sdpa_impls(a.peer_set, q, k, v, slices_of, is_causal=variant == "causal"))
        if "flex" in a.peer_set:
            def flex_setup():
                import torch._dynamo
                from torch.nn.attention.flex_attention import create_block_mask, flex_attention
                if self.flex_c is None:
                    self.flex_c = torch.compile(flex_attention, dynamic=False)
                torch._dynamo.reset()  # one compiled graph at a time (as peers.py)
                bm = None
                info = {}
                if mask_fn is not None:
                    t0 = time.perf_counter()
                    bm = create_block_mask(mask_fn, None, None, S, S, device=DEVICE)
                    sync()
                    info["blockmask_s"] = round(time.perf_counter() - t0, 3)
                    try:
                        info["block_sparsity_pct"] = float(bm.sparsity())
                    except Exception:  # noqa: BLE001
                        pass
                flex_c = self.flex_c

                def fn():
                    return flex_c(q, k, v, score_mod=score_fn, block_mask=bm)
                return fn, info
            impls["flex"] = (flex_setup, lambda out: (out, slices_of(out)))
        self.measure(row, impls, reference)

    def decode_row(self, row):
        """One query row per (batch, query head) against S keys (GQA): FLOPs
        2*B*Hq*S*(D+Dv); bytes: K and V once (2*B*Hkv*S*D*2), the floor of a
        memory-bound kernel. Ours, and SDPA's FLASH / cuDNN with enable_gqa."""
        import torch
        a = self.args
        B, Hq, Hkv, S, D = row["B"], row["H"], row["Hkv"], row["S"], row["D"]
        row["flops"] = 2 * B * Hq * S * (D + D)
        row["flop_rule"] = "dense"
        row["bytes"] = 2 * B * Hkv * S * D * 2 + 2 * B * Hq * D * 2
        torch.manual_seed(a.seed * 1000 + (zlib.crc32(f"decode/{S}/{D}".encode()) & 0xFFFF))
        q = torch.randn(B, Hq, 1, D, dtype=torch.bfloat16, device=DEVICE)
        k = torch.randn(B, Hkv, S, D, dtype=torch.bfloat16, device=DEVICE)
        v = torch.randn(B, Hkv, S, D, dtype=torch.bfloat16, device=DEVICE)
        rep = Hq // Hkv
        pairs = check_pairs(B, Hq)
        reference = [ref_attn(q[b, h], k[b, h // rep], v[b, h // rep], D ** -0.5, b=b, h=h)
                     for (b, h) in pairs]

        def slices_of(out):
            return [out[b, h] for (b, h) in pairs]
        impls = {}
        if not a.no_ours:
            # ours: the PyTorch binding's call (attn.attention), which packs the query
            # heads of a KV head into rows and splits the keys (attn/splitkv.py);
            # ours_packed: the same without the split (num_splits=1); ours_direct:
            # the b_decode kernel launched as given (one 128-row tile per query head).
            def binding_setup(num_splits):
                import attn
                from attn import ops as attn_ops
                attn.add_kernel_dir(a.binding_kernels)
                os.environ["ATTN_COMPILE"] = "0"  # the GPU machine has no compiler
                plan = attn_ops._decode_plan(q, k, v, True, False, None, num_splits)

                def fn():
                    return attn.attention(q, k, v, num_splits=num_splits)
                return fn, {"plan": None if plan is None else
                            {"pack": plan.pack, "splits": plan.splits, "fold": plan.fold}}
            impls["ours"] = (lambda: binding_setup(None), lambda out: (out, slices_of(out)))
            impls["ours_packed"] = (lambda: binding_setup(1), lambda out: (out, slices_of(out)))

            def ours_setup(folder=None):
                out = torch.full_like(q, float("nan"))
                lse = torch.full((B, Hq, 1), float("nan"), dtype=torch.float32, device=DEVICE)
                launch, info = self.ours_fn(SPEC[("decode", D)],
                                            {"query": q, "key": k, "value": v, "out": out,
                                             "lse": lse}, folder)

                def fn():
                    launch()
                    return out
                return fn, dict(info, spec=SPEC[("decode", D)])
            impls["ours_direct"] = (ours_setup, lambda out: (out, slices_of(out)))
            if a.ab_kernels:
                impls["ours_b"] = (lambda: ours_setup(a.ab_kernels), lambda out: (out, slices_of(out)))
        impls.update(sdpa_impls(a.peer_set, q, k, v, slices_of, enable_gqa=True))
        self.measure(row, impls, reference)

    def linear_row(self, row):
        import torch
        import torch.nn.functional as F
        a = self.args
        variant, T, D, B, H = row["variant"], row["S"], row["D"], row["B"], row["H"]
        C = FLA_CHUNK
        row["flops"] = B * H * T * (2 * C * (D + D) + 4 * D * D)
        row["bytes"] = 4 * B * T * H * D * 2 + (B * T * H * D * 2 if variant == "gla" else B * T * H * 2)
        row["mask"] = ("per-channel gates g [B,T,H,K] = logsigmoid(randn)/16" if variant == "gla"
                       else "per-head scalar gates g [B,T,H] = logsigmoid(randn)/16")
        torch.manual_seed(a.seed * 1000 + (zlib.crc32(f"{variant}/{T}/{D}".encode()) & 0xFFFF))
        # FLA's layout: [B, T, H, D] (its default, head_first=False).
        q = torch.randn(B, T, H, D, dtype=torch.bfloat16, device=DEVICE)
        k = torch.randn(B, T, H, D, dtype=torch.bfloat16, device=DEVICE)
        v = torch.randn(B, T, H, D, dtype=torch.bfloat16, device=DEVICE)
        gshape = (B, T, H, D) if variant == "gla" else (B, T, H)
        g = (F.logsigmoid(torch.randn(*gshape, device=DEVICE)) / 16).to(torch.bfloat16)
        scale = D ** -0.5
        pairs = check_pairs(B, H)

        def sel(x):  # [B, T, H, ...] -> [P, T, ...]
            return torch.stack([x[b, :, h] for (b, h) in pairs])
        # The same math on both sides (and in the reference), mapping:
        #   FLA chunk_gla(q, k, v, g, scale): S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,
        #     o_t = scale * q_t^T S_t (the current token included), g natural log (FLA
        #     cumsums g and multiplies by 1/ln 2 for exp2), initial_state None = zeros,
        #     no final state; chunk_simple_gla(q, k, v, g=g): the same with scalar exp(g_t).
        #   ours, gated_linear_attention (docs/spec-format.md): gate "vector" g [B,H,S,Dqk] /
        #     "scalar" g [B,H,S], f32 natural log, S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,
        #     out_t = scale * q_t^T S_t, scale = 1/sqrt(head_dim) (spec default = D^-0.5),
        #     no state.initial (zeros) and no state.final.
        #   So ours gets the same values: q, k, v transposed to [B, H, T, D] (contiguous:
        #   the bhsd kernels assume that layout) and the bf16 gates widened to f32.
        reference = ref_linear(sel(q), sel(k), sel(v), sel(g), scale)
        reference = list(reference.unbind(0))

        impls = {}
        if not a.no_ours:
            def ours_setup(folder=None):
                qo, ko, vo = (t.transpose(1, 2).contiguous() for t in (q, k, v))
                go = g.float().transpose(1, 2).contiguous()
                out = torch.full_like(qo, float("nan"))
                launch, info = self.ours_fn(SPEC[(variant, D)],
                                            {"query": qo, "key": ko, "value": vo, "gates": go, "out": out},
                                            folder)

                def fn():
                    launch()
                    return out
                return fn, dict(info, spec=SPEC[(variant, D)])
            impls["ours"] = (ours_setup, lambda out: (out, [out[b, h] for (b, h) in pairs]))
            if a.ab_kernels:
                impls["ours_b"] = (lambda: ours_setup(a.ab_kernels),
                                   lambda out: (out, [out[b, h] for (b, h) in pairs]))
        if "fla" in a.peer_set:
            def fla_setup():
                fns = self.import_fla()
                if isinstance(fns, str):
                    raise RuntimeError(fns)
                f = fns[variant]
                if variant == "gla":
                    def fn():
                        return f(q, k, v, g, scale=scale)
                else:
                    def fn():
                        return f(q, k, v, g=g, scale=scale)
                self.fla_tuned.add(variant)
                return fn, {"note": "first_call_s includes Triton autotuning"}

            def fla_out(res):
                o = res[0] if isinstance(res, (tuple, list)) else res
                return o, list(sel(o).unbind(0))
            impls["fla"] = (fla_setup, fla_out)
        self.measure(row, impls, reference)

    # -- derived numbers
    def finish_row(self, row):
        mm = self.ceil.get("matmul_tflops")
        cp = self.ceil.get("copy_gbps")
        for name, cell in row["impls"].items():
            reps = cell.get("ms_reps") or []
            if not reps:
                continue
            cell["ms"] = statistics.median(reps)
            # (ours_dense computes every (q, k) pair of the masked row's inputs.)
            flops = row["dense_flops"] if name == "ours_dense" else row["flops"]
            cell["tflops"] = flops / (cell["ms"] * 1e-3) / 1e12
            if mm:
                cell["pct_matmul"] = 100.0 * cell["tflops"] / mm
            if row.get("bytes"):
                cell["gbps"] = row["bytes"] / (cell["ms"] * 1e-3) / 1e9
                if cp:
                    cell["pct_copy"] = 100.0 * cell["gbps"] / cp
        ours = row["impls"].get("ours", {})
        for name, cell in row["impls"].items():
            if name not in ("ours", "ours_dense") and ours.get("ms") and cell.get("ms"):
                row["ratio_to_" + name] = cell["ms"] / ours["ms"]
        if row["variant"] in MASKED and ours.get("tflops"):
            dense = [r for r in self.rows if r["variant"] == "dense" and r["S"] == row["S"] and r["D"] == 128
                     and r["impls"].get("ours", {}).get("tflops")]
            if dense:
                row["ours_frac_of_dense"] = ours["tflops"] / dense[0]["impls"]["ours"]["tflops"]
            # The same ratio per round against ours_dense (same inputs, same rounds):
            # TFLOP/s over unmasked pairs / dense TFLOP/s = entries_frac * dense ms / ours ms.
            paired = row["impls"].get("ours_dense", {})
            if paired.get("status") == "ok" and len(paired.get("ms_reps") or []) == len(ours.get("ms_reps") or []):
                row["ours_frac_of_dense_same_round"] = statistics.median(
                    row["entries_frac"] * d / m for d, m in zip(paired["ms_reps"], ours["ms_reps"]))

    @staticmethod
    def _f(x, spec):
        if x is None or x == "":
            return "-"
        try:
            return format(x, spec)
        except (TypeError, ValueError):
            return str(x)

    def fmt_row(self, r):
        parts = [f"{r['variant']:<10} S={r['S']:<6} D={r['D']:<4} B={r['B']:<3} H={r['H']:<3}"]
        for name in ["ours", "ours_b", "ours_copy"] + PEERS:
            c = r["impls"].get(name)
            if not c:
                continue
            st = c.get("status", "")
            parts.append(f"{name} {self._f(c.get('tflops'), '7.1f')} TF/s {self._f(c.get('ms'), '8.3f')} ms "
                         f"err {self._f(c.get('rel_err'), '.1e')} {st}")
        ratios = " ".join(f"x{k[9:]}={v:.2f}" for k, v in r.items() if k.startswith("ratio_to_"))
        return " | ".join(parts) + (" | " + ratios if ratios else "") + \
            ("" if r.get("status") == "ok" else f" | {r.get('status')} {r.get('error', '')}")

    def table(self):
        lines = [f"# bench.py: ours vs peers ({self.meta.get('gpu')}, torch {self.meta.get('torch')}, "
                 f"cuDNN {self.meta.get('cudnn')}, triton {self.meta.get('triton')}, {self.meta.get('time_start')})",
                 "",
                 f"Ceilings: matmul {self._f(self.ceil.get('matmul_tflops'), '.0f')} TFLOP/s "
                 f"(end {self._f(self.ceil.get('matmul_tflops_end'), '.0f')}), copy "
                 f"{self._f(self.ceil.get('copy_gbps'), '.0f')} GB/s (end "
                 f"{self._f(self.ceil.get('copy_gbps_end'), '.0f')}). TFLOP/s: {CONVENTIONS['flops_softmax']}; "
                 f"linear: {CONVENTIONS['flops_linear']}. Median of {self.args.reps} interleaved do_bench medians. "
                 f"err: ||out-ref||/||ref|| vs float32, FAIL > {self.args.tol:g} or non-finite.",
                 "",
                 "| variant | S | D | B×H | ours TFLOP/s | ours err | cuDNN | FLASH | Flex | FLA | "
                 "ours/cuDNN | ours/FLASH | ours/Flex | ours/FLA | status |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            def cell(name):
                c = r["impls"].get(name)
                if not c:
                    return ""
                if c.get("status") == "error":
                    return "err"
                s = self._f(c.get("tflops"), ".1f")
                return s + ("" if c.get("status") == "ok" else " " + c.get("status", ""))
            ours = r["impls"].get("ours", {})
            bad = [f"{n}: {c.get('error', c.get('status'))}" for n, c in r["impls"].items()
                   if c.get("status") not in ("ok", None)]
            status = r.get("status", "")
            if status == "ok" and bad:
                status = "; ".join(bad)
            elif r.get("error"):
                status += " " + r["error"]
            lines.append(
                f"| {r['variant']} | {r['S']} | {r['D']} | {r['B']}×{r['H']} | {cell('ours')} | "
                f"{self._f(ours.get('rel_err'), '.1e')} | {cell('cudnn')} | {cell('flash')} | {cell('flex')} | "
                f"{cell('fla')} | {self._f(r.get('ratio_to_cudnn'), '.2f')} | {self._f(r.get('ratio_to_flash'), '.2f')} | "
                f"{self._f(r.get('ratio_to_flex'), '.2f')} | {self._f(r.get('ratio_to_fla'), '.2f')} | "
                f"{status.replace('|', '/')[:200]} |")
        ab = [r for r in self.rows if r["impls"].get("ours_b")]
        if ab:
            lines += ["", f"A/B in the same rounds: ours = {self.meta.get('kernels', self.args.kernels)}, ours_b = "
                      f"{self.meta.get('ab_kernels')} (each round's order alternates).", "",
                      "| variant | S | D | ours TFLOP/s | ours_b TFLOP/s | ours/ours_b | ours ms reps | "
                      "ours_b ms reps |", "|---|---|---|---|---|---|---|---|"]
            for r in ab:
                o, bb = r["impls"].get("ours", {}), r["impls"]["ours_b"]
                reps = [" ".join(self._f(x, ".3f") for x in c.get("ms_reps", [])) for c in (o, bb)]
                lines.append(f"| {r['variant']} | {r['S']} | {r['D']} | {self._f(o.get('tflops'), '.1f')} | "
                             f"{self._f(bb.get('tflops'), '.1f')} | {self._f(r.get('ratio_to_ours_b'), '.3f')} | "
                             f"{reps[0]} | {reps[1]} |")
        decode = [r for r in self.rows if r["variant"] in DECODE]
        if decode:
            lines += ["", "Decoding (--only decode): one query row per (batch, query head), "
                      f"{DECODE_HEADS[0]} query / {DECODE_HEADS[1]} KV heads, D = 128, S keys; "
                      "memory-bound, so GB/s of K and V read once and the share of the copy ceiling.",
                      "ours: attn.attention (query heads packed into rows, keys split: plan); packed: "
                      "the same, unsplit; direct: the kernel on the call as given. Timed as "
                      + ("CUDA graph replays (--graphs; host time excluded)."
                         if all(c.get("timing") == "cuda graph" for r in decode
                                for c in r["impls"].values() if c.get("status") == "ok")
                         else "eager calls (host time included where it exceeds the GPU's; "
                              "--graphs: see each cell's timing)."),
                      "", "| S | B | plan | ours us | ours GB/s | % of copy | packed us | direct us | "
                      "cuDNN us | FLASH us | ours/cuDNN | ours/FLASH | status |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in decode:
                o, c, f, pk, dr = (r["impls"].get(n, {}) for n in
                                   ("ours", "cudnn", "flash", "ours_packed", "ours_direct"))
                us = [None if not x.get("ms") else 1e3 * x["ms"] for x in (o, c, f, pk, dr)]
                plan = o.get("plan") or {}
                lines.append(f"| {r['S']} | {r['B']} | {plan.get('splits', '-')} x {plan.get('fold', '-')} | "
                             f"{self._f(us[0], '.1f')} | "
                             f"{self._f(o.get('gbps'), '.0f')} | {self._f(o.get('pct_copy'), '.0f')} | "
                             f"{self._f(us[3], '.1f')} | {self._f(us[4], '.1f')} | "
                             f"{self._f(us[1], '.1f')} | {self._f(us[2], '.1f')} | "
                             f"{self._f(r.get('ratio_to_cudnn'), '.2f')} | "
                             f"{self._f(r.get('ratio_to_flash'), '.2f')} | {r.get('status', '')} |")
        packed = [r for r in self.rows if r["impls"].get("ours_copy")]
        if packed:
            lines += ["", "q, k, v as views of one [B, S, 3, H, D] projection (--packed-qkv), every "
                      "implementation on the same views: ours reads them in place, ours_copy copies them "
                      "into the kernel's layout inside the timed region (the same kernel after).", "",
                      "| variant | S | D | ours TFLOP/s | ours_copy TFLOP/s | ours_copy / ours (time) |",
                      "|---|---|---|---|---|---|"]
            for r in packed:
                o, c = r["impls"].get("ours", {}), r["impls"]["ours_copy"]
                lines.append(f"| {r['variant']} | {r['S']} | {r['D']} | {self._f(o.get('tflops'), '.1f')} | "
                             f"{self._f(c.get('tflops'), '.1f')} | {self._f(r.get('ratio_to_ours_copy'), '.3f')} |")
        masked = [r for r in self.rows if r.get("ours_frac_of_dense") or r.get("ours_frac_of_dense_same_round")]
        if masked:
            lines += ["", "Masked rows against our dense kernel (TFLOP/s over unmasked pairs / our dense "
                      "TFLOP/s): against the dense row of the same S (timed earlier), and per round against "
                      "our dense kernel timed in the same rounds on the same inputs (ours_dense; median).", "",
                      "| variant | S | D | ours TFLOP/s | % of the dense row | ours_dense TFLOP/s | "
                      "% of dense, same rounds |", "|---|---|---|---|---|---|---|"]
            for r in masked:
                o, d = r["impls"].get("ours", {}), r["impls"].get("ours_dense", {})
                pct = [None if r.get(key) is None else 100 * r[key]
                       for key in ("ours_frac_of_dense", "ours_frac_of_dense_same_round")]
                lines.append(f"| {r['variant']} | {r['S']} | {r['D']} | {self._f(o.get('tflops'), '.1f')} | "
                             f"{self._f(pct[0], '.1f')} | {self._f(d.get('tflops'), '.1f')} | "
                             f"{self._f(pct[1], '.1f')} |")
        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.args.out, "bench.md"), "w") as f:
            f.write(text)
        log("")
        log(text)

    def plot(self):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except Exception as e:  # noqa: BLE001
            log(f"no plot: {e}")
            return
        soft = [r for r in self.rows if r["group"] == "softmax" and r["impls"]]
        lin = [r for r in self.rows if r["group"] == "linear" and r["impls"]]
        panels = [(p, rows) for p, rows in ((("ours", "cudnn", "flash", "flex"), soft), (("ours", "fla"), lin)) if rows]
        if not panels:
            return
        fig, axes = plt.subplots(len(panels), 1, figsize=(max(10, 0.6 * max(len(r) for _, r in panels) + 4),
                                                          4.5 * len(panels)), squeeze=False)
        for ax, (names, rows) in zip(axes[:, 0], panels):
            w = 0.8 / len(names)
            for i, name in enumerate(names):
                ys = [r["impls"].get(name, {}).get("tflops") or 0 for r in rows]
                ax.bar([x + i * w for x in range(len(rows))], ys, width=w, label=name)
            ax.set_xticks([x + 0.4 - w / 2 for x in range(len(rows))],
                          [f"{r['variant']}\nS{r['S']} D{r['D']}" for r in rows], fontsize=7)
            mm = self.ceil.get("matmul_tflops")
            if mm and rows is soft:
                ax.axhline(mm, color="gray", ls="--", lw=0.8, label=f"matmul {mm:.0f}")
            ax.set_ylabel("TFLOP/s (unmasked pairs)" if rows is soft else "TFLOP/s (chunkwise, C=64)")
            ax.legend(fontsize=8)
        fig.suptitle(f"{self.meta.get('gpu')}, bf16 forward, median of {self.args.reps} reps")
        fig.tight_layout()
        fig.savefig(os.path.join(self.args.out, "bench.png"), dpi=110)
        plt.close(fig)


def render(args):
    """bench.md and bench.png from a recorded bench.json (no GPU, no torch)."""
    with open(args.render) as f:
        doc = json.load(f)
    argv = doc.get("meta", {}).get("argv", [])
    for flag, attr, conv in (("--reps", "reps", int), ("--tol", "tol", float)):
        if flag in argv[:-1]:
            setattr(args, attr, conv(argv[argv.index(flag) + 1]))
    bench = Bench(args)
    bench.meta, bench.ceil, bench.rows = doc.get("meta", {}), doc.get("ceilings", {}), doc.get("rows", [])
    bench.table()
    bench.plot()


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        render(args)
        return
    rows = plan_rows(args)
    import torch
    assert DEVICE != "cuda" or torch.cuda.is_available(), "needs a CUDA GPU"
    try:  # float32 references must be IEEE float32 (the default; as peers.py)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    except Exception:  # noqa: BLE001
        pass
    import torch._dynamo as dynamo
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(dynamo.config, name):
            try:
                setattr(dynamo.config, name, 256)
            except Exception:  # noqa: BLE001
                pass
    sys.path.insert(0, os.path.join(REPO, "python"))
    bench = Bench(args)
    bench.env()
    bench.meta["plan"] = [f"{v}/S{S}/D{D}" for v, S, D in rows]
    log(f"{len(rows)} rows: {' '.join(bench.meta['plan'])}")
    try:
        if args.ceilings != "none":
            bench.ceilings()
        if "flex" in args.peer_set and any(v in SOFTMAX for v, _, _ in rows):
            t0 = time.perf_counter()
            try:  # start Inductor's compile workers once (peers.py's warm_compile)
                f = torch.compile(lambda x: torch.sin(x) * 2 + 1)
                f(torch.randn(1024, device=DEVICE))
                sync()
            except Exception as e:  # noqa: BLE001
                log(f"warm-up compile failed: {e}")
            bench.meta["warm_compile_s"] = round(time.perf_counter() - t0, 1)
        for variant, S, D in rows:
            log(f"---- {variant} S={S} D={D} (t={bench.elapsed():.0f} s)")
            bench.run_row(variant, S, D)
        if args.ceilings == "both" and not bench.broken:
            bench.ceilings(tag="_end")
    finally:
        bench.meta["nvidia_smi_end"] = nvsmi()
        bench.meta["time_end"] = time.strftime("%Y-%m-%d %H:%M:%S")
        bench.write()
        try:
            bench.table()
        except Exception as e:  # noqa: BLE001
            log(f"table failed: {e}")
        try:
            bench.plot()
        except Exception as e:  # noqa: BLE001
            log(f"plot failed: {e}")
        log(f"elapsed {bench.elapsed():.0f} s; wrote {os.path.abspath(args.out)}/bench.json")


if __name__ == "__main__":
    main()
