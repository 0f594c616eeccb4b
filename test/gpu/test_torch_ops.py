"""GPU tests of the PyTorch binding (python/attn/ops.py), run on the GPU machine.

    scripts/gpu/prepare.sh        # with the compiler: prebuilds gpu-kernels/torch/sm_90a
    # on the GPU machine, once libattn_runtime.so is built in build-rt (scripts/gpu/run.sh):
    ATTN_KERNEL_PATH=gpu-kernels/torch/sm_90a python3 -m pytest test/gpu/test_torch_ops.py

Every configuration of attn.prebuild.GPU_TEST_CONFIGS (the kernels prepare.sh
prebuilds) on fresh random inputs (never zeros; seeded per case) and shapes
that are not multiples of the tiles, with Sq != Sk both ways, one query row,
MHA / GQA / MQA head ratios and fully masked rows (causal with Sq > Sk, empty
block rows, windows), in eager mode and under torch.compile(fullgraph=True),
against the numpy float64 reference of test/exec/attn_numpy.py, PyTorch SDPA
(the variants it can express, as a boolean or additive mask) and FlexAttention
(torch.compile'd, same masks and scores). Fully masked rows must give out = 0
and lse = -inf, never NaN. Without CUDA every test skips; without torch the
module skips.

Also used without a GPU: test/python/test_torch_ops.py builds these cases on
the CPU to check that each call resolves to a prebuilt kernel and passes the
runtime's argument checks.
"""
import json
import os
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch binding's tests need PyTorch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "test", "exec"))
import attn  # noqa: E402
from attn.prebuild import GPU_TEST_CONFIGS  # noqa: E402
from attn.spec import spec_for  # noqa: E402
from attn_numpy import PySpec, eval_expr, make_inputs, reference  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda"
pytestmark = pytest.mark.skipif(
    not CUDA, reason="needs a CUDA GPU (run on the GPU machine with "
                     "ATTN_KERNEL_PATH=gpu-kernels/torch/sm_90a)")

DT = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
TOL = {"f16": 1e-2, "bf16": 1e-2, "f32": 1e-4}
ATTENTION = [c for c in GPU_TEST_CONFIGS if c["op"] == "attention"]
LINEAR = [c for c in GPU_TEST_CONFIGS if c["op"] != "attention"]
BY_ID = {c["id"]: c for c in GPU_TEST_CONFIGS}
# (B, Sq, Sk) and (Hq, Hkv): non-multiples of the tiles, Sq != Sk both ways,
# a single query row; MHA, GQA, MQA.
SHAPES = [(2, 130, 257), (1, 257, 100), (2, 1, 77), (1, 300, 300)]
HEADS = [(4, 4), (6, 2), (4, 1), (3, 3)]
LINEAR_SHAPES = [(2, 130), (1, 1), (1, 333)]


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def seed_of(*parts):
    return zlib.crc32(repr(parts).encode())


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (n if n > 0 else 1.0))


def to_np(t):
    return t.detach().double().cpu().numpy()


def head_tensor(x, dtype, layout, device):
    """A logical [B, H, S, D] tensor (values of x) stored in `layout` memory order."""
    if layout == "bshd":
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1, 3), np.float32)) \
            .to(device=device, dtype=dtype).transpose(1, 2)
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device=device, dtype=dtype)


def attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed, device=None):
    """(q, k, v), keyword arguments of attn.attention, PySpec, numpy inputs."""
    device = device or DEVICE
    spec = spec_for(cfg)
    ps = PySpec(spec)
    D, Dv = spec["shape"]["head_dim"], spec["shape"]["head_dim_v"]
    rng = np.random.default_rng(seed)
    _, x = make_inputs(ps, rng, B, Hq, Hkv, Sq, Sk, D, Dv, tensor_shapes={"bias": (Hq, Sk)})
    layout = cfg.get("layout", "bhsd")
    q, k, v = (head_tensor(x[n], DT[spec["dtype"]], layout, device) for n in "qkv")
    kw = {key: cfg[key] for key in ("causal", "window", "softcap", "scale", "score_mod",
                                    "mask_mod") if key in cfg}
    if "block_size" in cfg:
        kw["block_mask"] = torch.from_numpy(x["block_mask"]).to(device).bool()
        kw["block_size"] = tuple(cfg["block_size"])
    if cfg.get("documents"):
        kw["doc_ids"] = (torch.from_numpy(x["q_doc_ids"]).to(device).long(),
                         torch.from_numpy(x["kv_doc_ids"]).to(device))
    if "alibi" in cfg:
        kw["alibi_slopes"] = torch.from_numpy(x["alibi_slopes"]).float().to(device)
    if "tensors" in cfg:
        kw["tensors"] = {n: torch.from_numpy(np.asarray(x[n])).to(device) for n in cfg["tensors"]}
        kw["tensors"] = {n: t.float() if t.is_floating_point() else t.int()
                         for n, t in kw["tensors"].items()}
    return (q, k, v), kw, ps, x


def linear_case(cfg, B, H, S, seed, device=None):
    """(q, k, v[, g]), keyword arguments, the attn function, PySpec, numpy inputs."""
    device = device or DEVICE
    spec = spec_for(cfg)
    ps = PySpec(spec)
    D, Dv = spec["shape"]["head_dim"], spec["shape"]["head_dim_v"]
    rng = np.random.default_rng(seed)
    _, x = make_inputs(ps, rng, B, H, H, S, S, D, Dv)
    layout = cfg.get("layout", "bhsd")
    args = [head_tensor(x[n], DT[spec["dtype"]], layout, device) for n in "qkv"]
    kw = {}
    if "scale" in cfg:
        kw["scale"] = cfg["scale"]
    if cfg.get("final_state"):
        kw["return_final_state"] = True
    if cfg.get("initial_state"):
        kw["initial_state"] = torch.from_numpy(x["h0"]).float().to(device)
    if cfg["op"] == "linear_attention":
        fn = attn.linear_attention
        kw["feature_map"] = cfg.get("feature_map", "identity")
        kw["normalize"] = cfg.get("normalize", False)
    else:
        fn = attn.gated_linear_attention
        args.append(torch.from_numpy(x["g"]).float().to(device))
    return args, kw, fn, ps, x


def check_attention(ps, q, out, lse, ref):
    B, Hq, Sq, _ = q.shape
    assert out.shape == (B, Hq, Sq, ps.dv) and out.dtype == q.dtype
    assert lse.shape == (B, Hq, Sq) and lse.dtype == torch.float32
    if ps.layout == "bshd":  # the output follows the inputs' [B, S, H, D] memory order
        assert out.transpose(1, 2).is_contiguous()
    o, l = to_np(out), to_np(lse)
    assert not np.isnan(o).any(), "NaN in out"
    assert not np.isnan(l).any(), "NaN in lse"
    masked = np.isneginf(ref["lse"])
    assert (np.isneginf(l) == masked).all(), "lse = -inf exactly on the fully masked rows"
    assert (o[masked] == 0).all(), "fully masked rows give out = 0"
    err = rel(o, ref["o"])
    assert err <= TOL[ps.dtype], f"||out - ref|| / ||ref|| = {err:.3e}"
    if (~masked).any():
        err_lse = rel(l[~masked], ref["lse"][~masked])
        assert err_lse <= 1e-3, f"lse error {err_lse:.3e}"
    return err


# --------------------------------------------------------------------------
# Eager, every configuration and shape.

@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("cfg", ATTENTION, ids=[c["id"] for c in ATTENTION])
def test_attention_eager(cfg, shape):
    B, Sq, Sk = SHAPES[shape]
    Hq, Hkv = HEADS[shape]
    (q, k, v), kw, ps, x = attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed_of(cfg["id"], shape))
    out, lse = attn.attention(q, k, v, return_lse=True, **kw)
    sync()
    check_attention(ps, q, out, lse, reference(ps, x))
    # The same call without return_lse gives the same output.
    assert torch.equal(attn.attention(q, k, v, **kw), out)


@pytest.mark.parametrize("shape", range(len(LINEAR_SHAPES)))
@pytest.mark.parametrize("cfg", LINEAR, ids=[c["id"] for c in LINEAR])
def test_linear_eager(cfg, shape):
    B, S = LINEAR_SHAPES[shape]
    H = 3
    args, kw, fn, ps, x = linear_case(cfg, B, H, S, seed_of(cfg["id"], shape))
    res = fn(*args, **kw)
    out, ht = res if isinstance(res, tuple) else (res, None)
    sync()
    ref = reference(ps, x)
    assert out.shape == (B, H, S, ps.dv) and out.dtype == args[0].dtype
    o = to_np(out)
    assert not np.isnan(o).any()
    tol = TOL[ps.dtype] if ps.dtype != "f32" else 1e-4
    assert rel(o, ref["o"]) <= tol, rel(o, ref["o"])
    if ps.final:
        assert ht.shape == (B, H, ps.dqk, ps.dv) and ht.dtype == torch.float32
        err_ht = rel(to_np(ht), ref["ht"])
        # f16/bf16 run the chunkwise tensor-core kernel, which rounds the decayed
        # keys to the input type before the state product (as flash-linear-
        # attention's chunk_h does): the final state carries the input type's
        # rounding (the same rule as test/gpu/run_gpu_checks.py). f32 runs the
        # recurrent kernel, exact up to f32 summation order.
        assert err_ht <= (1e-4 if ps.dtype == "f32" else TOL[ps.dtype]), err_ht


# --------------------------------------------------------------------------
# Memory: views without copies, misaligned views, streams.

def test_bshd_views_of_a_packed_qkv_buffer():
    """q, k, v as views of one [B, S, 3, H, D] projection (stride(S) = 3*H*D: read in
    place by the sm_90a kernel, copied into a dense bshd layout for others), and of
    [B, S, H, D] tensors (no copy)."""
    cfg = BY_ID["dense_bf16_d128_bshd"]
    B, S, H, D = 2, 200, 4, 128
    g = torch.Generator(device=DEVICE).manual_seed(5)
    qkv = torch.randn(B, S, 3, H, D, device=DEVICE, dtype=torch.bfloat16, generator=g)
    ps = PySpec(spec_for(cfg))
    packed = [qkv[:, :, i].transpose(1, 2) for i in range(3)]
    dense = [t.contiguous().transpose(1, 2) for t in (qkv[:, :, i] for i in range(3))]
    for q, k, v in (packed, dense):
        out = attn.attention(q, k, v)
        x = {n: to_np(t) for n, t in zip("qkv", (q, k, v))}
        sync()
        assert out.transpose(1, 2).is_contiguous()
        assert rel(to_np(out), reference(ps, x)["o"]) <= 1e-2


def _packed(tensors, dtype):
    """Views of one [B, S, sum(H), D] buffer (a fused projection, heads packed
    side by side) holding the values of `tensors` (logical [B, H, S, D] arrays):
    stride(S) = sum(H) * D, neither a bhsd nor a bshd layout."""
    x = torch.cat([torch.from_numpy(np.ascontiguousarray(t.transpose(0, 2, 1, 3), np.float32))
                   for t in tensors], dim=2).to(device=DEVICE, dtype=dtype)
    views, first = [], 0
    for t in tensors:
        views.append(x[:, :, first:first + t.shape[1]].transpose(1, 2))
        first += t.shape[1]
    return views


def _launched(monkeypatch):
    """Records each launch's kernel and tensors."""
    launches = []
    original = attn.Kernel.launch

    def launch(self, *tensors, stream=None):
        launches.append((self, tensors))
        return original(self, *tensors, stream=stream)

    monkeypatch.setattr(attn.Kernel, "launch", launch)
    return launches


# The bshd configurations: packed views are in [B, S, H, D] memory order, and the
# GPU machine has only the prebuilt kernels (no compiler for the bhsd ones).
@pytest.mark.parametrize("cid", ["causal_f16_d64_bshd", "dense_bf16_d128_bshd",
                                 "gla_vector_f16_d64_bshd", "linear_relu_f16_d64_bshd"])
def test_packed_projections_are_read_in_place(cid, monkeypatch):
    """q, k, v (and GQA's fewer k / v heads) as views of one fused projection: a
    kernel that reads them only through TMA maps (`any_strides`, the sm_90a
    kernels) gets the views themselves, no copy; the result matches the reference."""
    cfg = BY_ID[cid]
    launches = _launched(monkeypatch)
    if cfg["op"] == "attention":
        (q, k, v), kw, ps, x = attention_case(cfg, 2, 6, 2, 257, 257, seed_of(cid, "packed"))
    else:
        (q, k, v, *rest), kw, fn, ps, x = linear_case(cfg, 2, 3, 333, seed_of(cid, "packed"))
    q, k, v = _packed([x["q"], x["k"], x["v"]], q.dtype)
    if cfg["op"] == "attention":
        out, lse = attn.attention(q, k, v, return_lse=True, **kw)
    else:
        out = fn(q, k, v, *rest, **kw)
        out = out[0] if isinstance(out, tuple) else out
    sync()
    kernel, tensors = launches[-1]
    with open(kernel.manifest_path) as f:
        mapped = bool(json.load(f).get("tensor_maps"))
    if mapped:  # the wgmma kernels (linear_relu_f16_d64 is the mma.sync one on sm_90a)
        assert kernel.cached_any_strides >= {"query", "key", "value"}, kernel.manifest_path
    for role, t, view in zip(kernel.cached_roles, tensors, (q, k, v)):
        assert (t.data_ptr() == view.data_ptr()) == (role in kernel.cached_any_strides), role
    ref = reference(ps, x)
    assert rel(to_np(out), ref["o"]) <= TOL[cfg["dtype"]]
    if cfg["op"] == "attention":
        check_attention(ps, q, out, lse, ref)


def test_misaligned_and_strided_views(monkeypatch):
    """A misaligned q is copied; k with padded rows is read in place on sm_90a (a
    TMA map describes it) and copied for other kernels. Right either way."""
    cfg = BY_ID["causal_bf16_d128"]
    launches = _launched(monkeypatch)
    B, H, S, D = 1, 2, 70, 128
    base = torch.randn(B * H * S * D + 1, device=DEVICE, dtype=torch.bfloat16)
    q = base[1:].view(B, H, S, D)  # 2-byte offset: not 16-byte aligned
    wide = torch.randn(B, H, S, 2 * D, device=DEVICE, dtype=torch.bfloat16)
    k = wide[..., :D]  # stride(S) = 2*D: not a bhsd kernel's layout
    v = torch.randn(B, H, S, D, device=DEVICE, dtype=torch.bfloat16)
    out = attn.attention(q, k, v, causal=True)
    ps = PySpec(spec_for(cfg))
    x = {n: to_np(t) for n, t in zip("qkv", (q, k, v))}
    sync()
    assert rel(to_np(out), reference(ps, x)["o"]) <= 1e-2
    kernel, tensors = launches[-1]
    assert tensors[0].data_ptr() != q.data_ptr()
    assert (tensors[1].data_ptr() == k.data_ptr()) == ("key" in kernel.cached_any_strides)


def test_runs_on_the_current_stream():
    cfg = BY_ID["causal_bf16_d128"]
    (q, k, v), kw, ps, x = attention_case(cfg, 2, 4, 4, 300, 300, seed_of("stream"))
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        out = attn.attention(q, k, v, **kw)
    s.synchronize()
    assert rel(to_np(out), reference(ps, x)["o"]) <= 1e-2


def test_document_ids_as_one_tensor():
    cfg = BY_ID["document_bf16_d64"]
    (q, k, v), kw, ps, x = attention_case(cfg, 2, 4, 4, 150, 150, seed_of("docs"))
    x["kv_doc_ids"] = x["q_doc_ids"]
    kw["doc_ids"] = kw["doc_ids"][0]
    out, lse = attn.attention(q, k, v, return_lse=True, **kw)
    sync()
    check_attention(ps, q, out, lse, reference(ps, x))


def test_no_keys_gives_zero_rows():
    q = torch.randn(1, 2, 5, 64, device=DEVICE, dtype=torch.bfloat16)
    k = torch.randn(1, 2, 0, 64, device=DEVICE, dtype=torch.bfloat16)
    out, lse = attn.attention(q, k, k, return_lse=True)
    assert (out == 0).all() and torch.isneginf(lse).all()


@pytest.mark.parametrize("Sq", [1, 200])
def test_split_keys_merge_into_the_whole(Sq):
    """Split-KV: our kernel on disjoint parts of the keys (sizes not multiples of
    the tiles, one of them a single key, one empty), merged with merge_attention,
    equals the kernel on all keys and the float64 reference (GQA, bf16, D = 64)."""
    cfg = BY_ID["dense_bf16_d64"]
    B, Hq, Hkv, Sk = 2, 4, 2, 1000
    (q, k, v), kw, ps, x = attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed_of("split", Sq))
    cuts = [0, 333, 334, 334, 777, Sk]
    parts = [attn.attention(q, k[:, :, a:b], v[:, :, a:b], return_lse=True)
             for a, b in zip(cuts, cuts[1:])]
    out, lse = attn.merge_attention([o for o, _ in parts], [l for _, l in parts])
    whole, whole_lse = attn.attention(q, k, v, return_lse=True)
    sync()
    ref = reference(ps, x)
    check_attention(ps, q, out, lse, ref)
    assert rel(to_np(out), to_np(whole)) <= 1e-2
    assert rel(to_np(lse), to_np(whole_lse)) <= 1e-5


@pytest.mark.parametrize("cid,Sq", [("dense_bf16_d128", 1), ("dense_bf16_d128", 5),
                                     ("dense_bf16_d128_bshd", 1)])
def test_decoding_packs_heads_and_splits_keys(cid, Sq):
    """Decoding shapes (attn/splitkv.py): GQA heads packed into query rows, keys
    split into parts (automatic, explicit, none) of a [B, H, S, D] cache (parts
    as heads) or a [B, S, H, D] one (parts as batches), and a KV cache slice
    that cannot be split: each against the float64 reference."""
    import attn.ops as O
    cfg = BY_ID[cid]
    B, Hq, Hkv, Sk = 3, 16, 4, 6000  # 6000 keys: parts of 1200 / 1500 / 2000 / 3000
    (q, k, v), kw, ps, x = attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed_of("decode", cid, Sq))
    ref = reference(ps, x)
    plan = O._decode_plan(q, k, v, True, False, None, None)
    assert plan.pack and plan.splits > 1, plan  # 6 items on the GPU's SMs
    for n in (None, 1, 4):
        out, lse = attn.attention(q, k, v, num_splits=n, return_lse=True)
        sync()
        check_attention(ps, q, out, lse, ref)
    if cfg.get("layout", "bhsd") == "bhsd":
        cache = torch.full((B, Hkv, 8192, 128), float("nan"), device=DEVICE, dtype=q.dtype)
        cache_v = cache.clone()
        cache[:, :, :Sk], cache_v[:, :, :Sk] = k, v
        ks, vs = cache[:, :, :Sk], cache_v[:, :, :Sk]
        assert O._decode_plan(q, ks, vs, True, False, None, None).splits == 1
        out, lse = attn.attention(q, ks, vs, return_lse=True)
        sync()
        check_attention(ps, q, out, lse, ref)


def _varlen_reference(q, k, v, cu_q, cu_k, causal):
    """float64, sequence by sequence, bottom-right aligned per sequence (FA's varlen)."""
    outs, lses = [], []
    rep = q.shape[1] // k.shape[1]
    for b in range(len(cu_q) - 1):
        qs, ks, vs = (t[c[b]:c[b + 1]].double().cpu()
                      for t, c in ((q, cu_q), (k, cu_k), (v, cu_k)))
        Lq, Lk = qs.shape[0], ks.shape[0]
        s = qs.shape[-1] ** -0.5 * torch.einsum("ihd,jhd->hij", qs, ks.repeat_interleave(rep, 1))
        if causal:
            i, j = torch.arange(Lq)[:, None], torch.arange(Lk)[None, :]
            s = s.masked_fill(j > i + Lk - Lq, float("-inf"))
        lse = torch.logsumexp(s, -1)
        p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
        outs.append(torch.einsum("hij,jhd->ihd", p, vs.repeat_interleave(rep, 1)))
        lses.append(lse)
    return torch.cat(outs).numpy(), torch.cat(lses, 1).numpy()


@pytest.mark.parametrize("unequal", [False, True])
def test_attention_varlen_matches_each_sequence(unequal):
    """Packed sequences (lengths not multiples of the tiles, one empty; with
    unequal key lengths a cached prefix and a sequence with fewer keys than
    queries, whose first rows see nothing) against each sequence on its own."""
    g = torch.Generator(device=DEVICE).manual_seed(11 + unequal)
    lq = [100, 0, 300, 57, 129]
    lk = [260, 3, 300, 20, 129] if unequal else lq
    cu_q = torch.tensor([0] + lq, device=DEVICE).cumsum(0).to(torch.int32)
    cu_k = torch.tensor([0] + lk, device=DEVICE).cumsum(0).to(torch.int32)
    q = torch.randn(sum(lq), 4, 64, device=DEVICE, dtype=torch.bfloat16, generator=g)
    k = torch.randn(sum(lk), 2, 64, device=DEVICE, dtype=torch.bfloat16, generator=g)
    v = torch.randn(sum(lk), 2, 64, device=DEVICE, dtype=torch.bfloat16, generator=g)
    out, lse = attn.attention_varlen(q, k, v, cu_q, cu_k if unequal else None, causal=True,
                                     return_lse=True)
    sync()
    ref_o, ref_lse = _varlen_reference(q, k, v, cu_q.tolist(), cu_k.tolist(), True)
    o, l = to_np(out), to_np(lse)
    assert o.shape == ref_o.shape and l.shape == ref_lse.shape
    assert not np.isnan(o).any() and not np.isnan(l).any()
    masked = np.isneginf(ref_lse)
    assert masked.any() == unequal
    assert (np.isneginf(l) == masked).all() and (o.transpose(1, 0, 2)[masked] == 0).all()
    assert rel(o, ref_o) <= 1e-2
    assert rel(l[~masked], ref_lse[~masked]) <= 1e-3


def test_kernels_come_from_the_kernel_directory():
    """Without a compiler (the GPU machine) every kernel was found in a kernel directory."""
    from attn import kernels
    assert attn.kernel_dirs(), "set ATTN_KERNEL_PATH=gpu-kernels/torch/sm_90a"
    attn.attention(*attention_case(BY_ID["dense_bf16_d64"], 1, 2, 2, 10, 10, 0)[0])
    if kernels.find_compiler() is None:
        for kernel in kernels._loaded.values():
            assert any(kernel.manifest_path.startswith(d) for d in attn.kernel_dirs())


# --------------------------------------------------------------------------
# torch.compile.

COMPILED = ["causal_bf16_d128", "dense_bf16_d128_bshd", "block_sparse_bf16_d64",
            "document_bf16_d64", "custom_bf16_d64", "alibi_bf16_d64", "scale_f32_d32_dv64"]


@pytest.mark.parametrize("cid", COMPILED)
def test_attention_compiled_matches_eager(cid):
    torch._dynamo.reset()
    cfg = BY_ID[cid]
    (q, k, v), kw, ps, x = attention_case(cfg, 2, 6, 2, 130, 257, seed_of(cid, "compile"))

    def f(q, k, v):
        return attn.attention(q, k, v, return_lse=True, **kw)

    out_c, lse_c = torch.compile(f, fullgraph=True)(q, k, v)
    out_e, lse_e = f(q, k, v)
    sync()
    assert torch.equal(out_c, out_e) and torch.equal(lse_c, lse_e)
    check_attention(ps, q, out_c, lse_c, reference(ps, x))


def test_compiled_block_with_projections_and_dynamic_shapes():
    """A transformer attention block: projections, [B, S, H, D] views, our op, output
    projection; compiled with fullgraph=True and dynamic shapes, against eager."""
    torch._dynamo.reset()
    H, D = 4, 64  # the kernel of causal_f16_d64_bshd
    g = torch.Generator(device=DEVICE).manual_seed(11)
    w_qkv = torch.randn(H * D, 3 * H * D, device=DEVICE, dtype=torch.float16, generator=g) * 0.05
    w_o = torch.randn(H * D, H * D, device=DEVICE, dtype=torch.float16, generator=g) * 0.05

    def block(x):
        B, S, _ = x.shape
        qkv = (x @ w_qkv).view(B, S, 3, H, D)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        o = attn.attention(q, k, v, causal=True)
        return o.transpose(1, 2).reshape(B, S, H * D) @ w_o

    compiled = torch.compile(block, fullgraph=True, dynamic=True)
    # S = 4200 takes the kernel's Sk >= 4096 variant (causal D = 64 runs the dynamic
    # scheduler there, session 18), whose tile counter the base kernel's roles lack:
    # the runtime gives the variant its own.
    for B, S in ((2, 130), (1, 301), (1, 4200)):
        x = torch.randn(B, S, H * D, device=DEVICE, dtype=torch.float16, generator=g)
        y_c, y_e = compiled(x), block(x)
        sync()
        assert not torch.isnan(y_c).any()
        assert rel(to_np(y_c), to_np(y_e)) <= 1e-2


@pytest.mark.parametrize("cid", ["linear_elu_norm_bf16_d64", "gla_scalar_bf16_d64",
                                 "gla_vector_f16_d64_bshd"])
def test_linear_compiled_matches_eager(cid):
    torch._dynamo.reset()
    cfg = BY_ID[cid]
    args, kw, fn, ps, x = linear_case(cfg, 2, 3, 130, seed_of(cid, "compile"))
    res_c = torch.compile(lambda *a: fn(*a, **kw), fullgraph=True)(*args)
    res_e = fn(*args, **kw)
    sync()
    res_c = res_c if isinstance(res_c, tuple) else (res_c,)
    res_e = res_e if isinstance(res_e, tuple) else (res_e,)
    for a, b in zip(res_c, res_e):
        assert torch.equal(a, b)


def test_opcheck():
    """torch.library.opcheck: schema, fake implementation against the real one,
    AOT dispatch with dynamic shapes."""
    q = torch.randn(2, 4, 130, 64, device=DEVICE, dtype=torch.bfloat16)
    k = torch.randn(2, 2, 100, 64, device=DEVICE, dtype=torch.bfloat16)
    v = torch.randn(2, 2, 100, 64, device=DEVICE, dtype=torch.bfloat16)
    args = (q, k, v, None, None, None, None, [], "", False, None, None, None, None, None, None,
            "bhsd")
    torch.library.opcheck(torch.ops.attn.attention.default, args,
                          test_utils=("test_schema", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))
    g = torch.randn(2, 4, 130, device=DEVICE).mul(-0.1)
    torch.library.opcheck(torch.ops.attn.gated_linear_attention.default,
                          (q, q, q, g, None, None, True, "bhsd"),
                          test_utils=("test_schema", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))


# --------------------------------------------------------------------------
# Peers: SDPA and FlexAttention on the same inputs.

def visibility(ps, x):
    """The boolean [B, Hq, Sq, Sk] mask of the spec (as test/exec/attn_numpy.py)."""
    B, Hq, Sq, _ = x["q"].shape
    Sk = x["k"].shape[2]
    i, j = np.arange(Sq)[:, None], np.arange(Sk)[None, :]
    vis = np.ones((B, Hq, Sq, Sk), dtype=bool)
    if ps.causal:
        vis &= (j <= i + Sk - Sq)[None, None]
    if ps.window is not None:
        L, R = ps.window["left"], ps.window["right"]
        vis &= ((i + Sk - Sq - L <= j) & (j <= i + Sk - Sq + R))[None, None]
    if ps.block_sparse is not None:
        bq, bk = ps.block_sparse["block_q"], ps.block_sparse["block_k"]
        bm = x["block_mask"] != 0
        dense = np.repeat(np.repeat(bm, bq, axis=2), bk, axis=3)[:, :, :Sq, :Sk]
        vis &= np.broadcast_to(dense, vis.shape)
    if ps.documents:
        vis &= x["q_doc_ids"][:, None, :, None] == x["kv_doc_ids"][:, None, None, :]
    if ps.mask_custom:
        tensors = {n: ("float" if d["dtype"] == "f32" else "int", np.asarray(x[n], np.float64))
                   for n, d in ps.tensors.items()}
        vis &= eval_expr(ps.mask_custom, B, Hq, Sq, Sk, tensors).astype(bool)
    return vis


SDPA = [c for c in ATTENTION if "softcap" not in c and "score_mod" not in c]


@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("cfg", SDPA, ids=[c["id"] for c in SDPA])
def test_error_against_sdpa(cfg, shape):
    """SDPA on the same inputs with the spec's mask (and ALiBi) as an additive bias:
    our error against the float64 reference is at most twice SDPA's (rows with at
    least one visible key; SDPA gives NaN on the others)."""
    B, Sq, Sk = SHAPES[shape]
    Hq, Hkv = HEADS[shape]
    (q, k, v), kw, ps, x = attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed_of(cfg["id"], "sdpa"))
    vis = visibility(ps, x)
    bias = np.where(vis, 0.0, -np.inf)
    if ps.alibi is not None:
        sl = x["alibi_slopes"]
        sl = np.broadcast_to(sl[None, :] if sl.ndim == 1 else sl, (B, Hq))
        i, j = np.arange(Sq)[:, None], np.arange(Sk)[None, :]
        bias = bias - sl[:, :, None, None] * np.abs(i + Sk - Sq - j)[None, None]
    rows = vis.any(-1)
    mask = torch.from_numpy(bias).to(device=DEVICE, dtype=q.dtype)
    ref = reference(ps, x)["o"][rows]
    ours = to_np(attn.attention(q, k, v, **kw))[rows]
    peer = to_np(torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=float(ps.effective_scale(ps.dqk)),
        enable_gqa=Hq != Hkv))[rows]
    err_ours, err_peer = rel(ours, ref), rel(peer, ref)
    floor = 1e-5 if ps.dtype == "f32" else 1e-3
    assert err_ours <= max(2 * err_peer, floor), (err_ours, err_peer)


FLEX = ["causal_bf16_d128", "window_bf16_d64", "softcap_bf16_d128", "alibi_bf16_d64",
        "document_bf16_d64", "custom_bf16_d64", "block_sparse_bf16_d64"]


def flex_mods(ps, x, kw, Sq, Sk):
    """FlexAttention score_mod / mask_mod of the spec (bottom-right aligned)."""
    off = Sk - Sq
    L = R = None
    if ps.window is not None:
        L, R = ps.window["left"], ps.window["right"]
    bm = kw.get("block_mask")
    bq, bk = kw.get("block_size", (1, 1))
    qd, kd = kw["doc_ids"] if "doc_ids" in kw else (None, None)
    slopes = kw.get("alibi_slopes")
    bias = kw.get("tensors", {}).get("bias")

    def mask_mod(b, h, i, j):
        ok = j >= 0
        if ps.causal:
            ok = ok & (j <= i + off)
        if L is not None:
            ok = ok & (i + off - L <= j) & (j <= i + off + R)
        if bm is not None:
            ok = ok & bm[b, h, i // bq, j // bk]
        if qd is not None:
            ok = ok & (qd[b, i] == kd[b, j])
        if ps.mask_custom:  # "k <= q + Sk - Sq && q - k < 64"
            ok = ok & (j <= i + off) & (i - j < 64)
        return ok

    def score_mod(s, b, h, i, j):
        if ps.softcap is not None:
            s = ps.softcap * torch.tanh(s / ps.softcap)
        if slopes is not None:
            s = s - slopes[h] * (i + off - j).abs()
        if bias is not None:  # "score + bias[h, k]"
            s = s + bias[h, j]
        return s

    return score_mod, mask_mod


@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("cid", FLEX)
def test_error_against_flex_attention(cid, shape):
    """FlexAttention (torch.compile'd) with the same masks and scores: our error against
    the float64 reference is at most twice Flex's, and fully masked rows agree."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch._dynamo.reset()  # a fresh compile per case (no recompile limit across cases)
    cfg = BY_ID[cid]
    B, Sq, Sk = SHAPES[shape]
    Hq, Hkv = HEADS[shape]
    (q, k, v), kw, ps, x = attention_case(cfg, B, Hq, Hkv, Sq, Sk, seed_of(cid, "flex"))
    score_mod, mask_mod = flex_mods(ps, x, kw, Sq, Sk)
    try:
        bm = create_block_mask(mask_mod, B, Hq, Sq, Sk, device=DEVICE)
        flex = torch.compile(flex_attention)
        peer = flex(q.contiguous(), k.contiguous(), v.contiguous(), score_mod=score_mod,
                    block_mask=bm, scale=float(ps.effective_scale(ps.dqk)), enable_gqa=Hq != Hkv)
    except Exception as e:  # noqa: BLE001 - the peer's limits are not ours
        lines = [ln.strip() for ln in str(e).splitlines() if "Error" in ln] or [str(e)]
        pytest.skip(f"FlexAttention failed on this case: {lines[-1][:300]}")
    rows = visibility(ps, x).any(-1)
    ref = reference(ps, x)["o"]
    ours = to_np(attn.attention(q, k, v, **kw))
    err_ours, err_peer = rel(ours[rows], ref[rows]), rel(to_np(peer)[rows], ref[rows])
    assert err_ours <= max(2 * err_peer, 1e-3), (err_ours, err_peer)
    assert (ours[~rows] == 0).all()
