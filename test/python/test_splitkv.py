"""Decoding-shaped attention in the binding (attn/splitkv.py): the plan (plain
Python, no torch) and, with torch on the CPU, the rewritten calls end to end
with the kernel launch replaced by a float64 evaluation of what it was given.
The results are compared with float64 attention over the original tensors, so
a wrong packing order, key fold, query repetition or merge fails."""
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
from attn import splitkv  # noqa: E402
from attn.spec import AttnArgumentError  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def bhsd(shape):
    b, h, s, d = shape
    return (h * s * d, s * d, d, 1)


def bshd(shape):
    b, h, s, d = shape
    return (s * h * d, d, h * d, 1)


def plan(q, k, *, k_stride=None, position_free=True, causal=False, window=None,
         num_splits=None, sms=132):
    k_stride = k_stride or bhsd(k)
    return splitkv.plan(q, k, k_stride, k, k_stride, position_free=position_free,
                        causal=causal, window=window, num_splits=num_splits, sms=sms)


# ==========================================================================
# The plan (no torch)

def test_decoding_packs_heads_and_splits_keys():
    # The bench's decode rows: B = 4, 32 / 8 heads, one row: packed, 32 items of 132 SMs.
    p = plan((4, 32, 1, 128), (4, 8, 32768, 128))
    assert p.pack and p.fold == "heads" and p.keys is None
    assert splitkv.items(4, 8, 4, 128) == 32 and p.splits == 4
    # D = 64: three 64-row slices an item.
    assert splitkv.items(4, 8, 4, 64) == 11 and splitkv.items(1, 1, 200, 64) == 2
    assert 32768 // p.splits >= splitkv.MIN_KEYS_PER_PART
    # A [B, S, H, D] cache folds its parts into the batch.
    p = plan((4, 32, 1, 128), (4, 8, 32768, 128), k_stride=bshd((4, 8, 32768, 128)))
    assert p.fold == "batch" and p.splits > 1


def test_no_split_where_items_fill_the_gpu_or_keys_are_few():
    # Prefill: many items already.
    assert plan((4, 32, 4096, 128), (4, 8, 4096, 128)) is None
    # Decoding with a large batch fills the SMs by packing alone.
    p = plan((64, 32, 1, 128), (64, 8, 8192, 128))
    assert p.pack and p.splits == 1
    # Too few keys for parts of MIN_KEYS_PER_PART.
    p = plan((1, 8, 1, 64), (1, 8, 1500, 64))
    assert p is None or p.splits == 1
    # No GPU (sms None): packing only.
    p = plan((1, 8, 1, 64), (1, 2, 65536, 64), sms=None)
    assert p.pack and p.splits == 1


def test_parts_divide_the_keys_or_there_are_none():
    # 32771 keys (prime): no equal parts; a KV cache slice (heads Smax apart) neither.
    p = plan((1, 8, 1, 64), (1, 2, 32771, 64))
    assert p.pack and p.splits == 1
    k = (1, 2, 30000, 64)
    sliced = (2 * 32768 * 64, 32768 * 64, 64, 1)  # cache[:, :, :30000] of 32768
    p = plan((1, 8, 1, 64), k, k_stride=sliced)
    assert p.splits == 1
    for n in (3, 7):
        with pytest.raises(AttnArgumentError, match=f"num_splits={n}"):
            plan((1, 8, 1, 64), (1, 2, 32768, 64) if n == 3 else k, k_stride=None if n == 3 else sliced,
                 num_splits=n)
    # One KV head: its keys are back to back whatever the head stride.
    assert splitkv.fold_of((2, 1, 4096, 64), (999999, 12345, 64, 1), 4) == "heads"


def test_explicit_splits_and_errors():
    p = plan((2, 4, 1, 64), (2, 4, 4096, 64), num_splits=4)
    assert not p.pack and p.splits == 4 and p.fold == "heads"
    assert plan((2, 4, 1, 64), (2, 4, 4096, 64), num_splits=1) is None
    with pytest.raises(AttnArgumentError, match="more parts than keys"):
        plan((2, 4, 1, 64), (2, 4, 2, 64), num_splits=4)
    with pytest.raises(AttnArgumentError, match="more parts than keys"):
        plan((2, 4, 1, 64), (2, 4, 0, 64), num_splits=2)
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(AttnArgumentError, match="num_splits: expected"):
            plan((2, 4, 1, 64), (2, 4, 4096, 64), num_splits=bad)
    with pytest.raises(AttnArgumentError, match="position-free"):
        plan((2, 4, 1, 64), (2, 4, 4096, 64), position_free=False, num_splits=2)
    with pytest.raises(AttnArgumentError, match="position-free"):
        plan((2, 4, 5, 64), (2, 4, 4096, 64), causal=True, num_splits=2)


def test_masks_qualify_only_with_one_query_row():
    assert plan((1, 8, 1, 64), (1, 2, 4096, 64), position_free=False) is None
    assert plan((1, 8, 2, 64), (1, 2, 4096, 64), causal=True) is None
    # One row: causal sees every key; a window a range (a view: packing only).
    p = plan((1, 8, 1, 64), (1, 2, 65536, 64), causal=True)
    assert p.keys is None and p.splits > 1
    p = plan((1, 8, 1, 64), (1, 2, 65536, 64), causal=True, window=(1023, 0))
    assert p.keys == (65536 - 1024, 65536) and p.splits == 1 and p.pack


def test_visible_keys():
    assert splitkv.visible_keys(10, True, None) == (0, 10)
    assert splitkv.visible_keys(10, False, (3, 0)) == (6, 10)
    assert splitkv.visible_keys(10, True, (100, 5)) == (0, 10)
    assert splitkv.visible_keys(10, False, (2, 2)) == (7, 10)


def test_choose_splits_prefers_few_parts_at_good_efficiency():
    always = lambda n: True  # noqa: E731
    assert splitkv.choose_splits(16, 32768, 132, always) == 8      # 128 of 132
    assert splitkv.choose_splits(66, 32768, 132, always) == 2      # 132 of 132
    assert splitkv.choose_splits(120, 32768, 132, always) == 1     # fills 91% already
    assert splitkv.choose_splits(16, 32768, 132, lambda n: n in (2, 3)) == 3


# ==========================================================================
# The rewritten calls on the CPU

def _reference(q, k, v, causal=False, window=None, softcap=None, scale=None):
    """float64 attention over [B, Hq, Sq, D] / [B, Hkv, Sk, D] (GQA), bottom-right."""
    q, k, v = q.double(), k.double(), v.double()
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    s = (scale or q.shape[-1] ** -0.5) * q @ k.transpose(-1, -2)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    Sq, Sk = s.shape[-2:]
    i, j = torch.arange(Sq)[:, None], torch.arange(Sk)[None, :]
    ok = torch.ones(Sq, Sk, dtype=torch.bool)
    if causal:
        ok &= j <= i + Sk - Sq
    if window is not None:
        ok &= (j >= i + Sk - Sq - window[0]) & (j <= i + Sk - Sq + window[1])
    s = s.masked_fill(~ok, -math.inf)
    lse = torch.logsumexp(s, -1)
    return (torch.exp(s - lse[..., None]).nan_to_num(0.0) @ v), lse


@pytest.fixture
def launches(monkeypatch):
    """attention_op's launch evaluated in float64 from the tensors it was given
    (position-free specs: what the rewritten calls launch); records each."""
    import attn.ops as O
    from attn import spec as S
    seen = []

    def launch(spec, roles, device, alternative=None):
        assert "mask" not in spec, spec  # the rewrite drops causal / window
        seen.append((spec, dict(roles)))
        out, lse = _reference(roles["query"], roles["key"], roles["value"],
                              softcap=spec.get("score", {}).get("softcap"),
                              scale=spec.get("scale"))
        roles["out"].copy_(out)
        roles["lse"].copy_(lse)
    monkeypatch.setattr(S, "check_device", lambda named: None)
    monkeypatch.setattr(O, "_launch", launch)
    return seen


def _close(out, lse, ref_out, ref_lse, tol=1e-5):
    torch.testing.assert_close(out.double(), ref_out, rtol=tol, atol=tol)
    seen = ~torch.isneginf(ref_lse)
    assert (torch.isneginf(lse) == ~seen).all()
    torch.testing.assert_close(lse.double()[seen], ref_lse[seen], rtol=tol, atol=tol)


@needs_torch
@pytest.mark.parametrize("case", ["gqa_heads", "gqa_batch", "mha_heads", "rows3", "softcap_scale",
                                  "gqa_rows70", "gqa_batch_rows70"])
def test_split_and_packed_calls_equal_attention(launches, case):
    import attn
    torch.manual_seed(hash(case) % 1000)
    B, Hq, Hkv, Sq, Sk, D, Dv = 2, 8, 2, 1, 3072, 16, 8
    if case == "mha_heads":
        Hkv = Hq
    if case == "rows3":
        Sq = 3
    if case.endswith("rows70"):  # past a slice's 64 rows: GQA heads stay heads
        Sq = 70
    q = torch.randn(B, Hq, Sq, D)
    k = torch.randn(B, Hkv, Sk, D)
    v = torch.randn(B, Hkv, Sk, Dv)
    if "batch" in case:  # a [B, S, H, D] cache
        k = k.transpose(1, 2).contiguous().transpose(1, 2)
        v = v.transpose(1, 2).contiguous().transpose(1, 2)
    kw = dict(softcap=3.0, scale=0.3) if case == "softcap_scale" else {}
    out, lse = attn.attention(q, k, v, num_splits=3, return_lse=True, **kw)
    ref_out, ref_lse = _reference(q, k, v, **kw)
    assert out.shape == (B, Hq, Sq, Dv) and lse.shape == (B, Hq, Sq)
    _close(out, lse, ref_out, ref_lse)
    (spec, roles), = launches
    qr, kr = roles["query"], roles["key"]
    pack = Hq != Hkv and Sq < 64
    if "batch" in case:
        assert tuple(kr.shape) == (B * 3, Hkv, Sk // 3, D)
        assert tuple(qr.shape) == ((B * 3, Hkv, Hq // Hkv * Sq, D) if pack else (B * 3, Hq, Sq, D))
    else:
        rows = Hq // Hkv * Sq if pack else Sq
        assert tuple(kr.shape) == (B, Hkv * 3, Sk // 3, D)
        assert tuple(qr.shape) == (B, Hkv * 3 * (1 if pack else Hq // Hkv), rows, D)
    # The keys are the caller's memory (a view), not a copy.
    assert kr.data_ptr() == k.data_ptr() and roles["value"].data_ptr() == v.data_ptr()


@needs_torch
def test_packing_alone_launches_views_of_q(launches):
    import attn
    torch.manual_seed(3)
    q = torch.randn(3, 12, 1, 32)
    k, v = torch.randn(3, 4, 50, 32), torch.randn(3, 4, 50, 32)
    out, lse = attn.attention(q, k, v, return_lse=True)  # on the CPU: no automatic split
    _close(out, lse, *_reference(q, k, v))
    (_, roles), = launches
    assert tuple(roles["query"].shape) == (3, 4, 3, 32)
    assert roles["query"].data_ptr() == q.data_ptr()


@needs_torch
@pytest.mark.parametrize("bound", [dict(causal=True), dict(causal=True, window=(9, 0)),
                                   dict(window=(5, 3)), dict(window=(0, 0))])
def test_one_row_under_causal_or_window_bounds(launches, bound):
    import attn
    torch.manual_seed(5)
    q = torch.randn(2, 6, 1, 16)
    k, v = torch.randn(2, 3, 40, 16), torch.randn(2, 3, 40, 16)
    out, lse = attn.attention(q, k, v, return_lse=True, **bound)
    _close(out, lse, *_reference(q, k, v, **bound))
    (_, roles), = launches
    lo, hi = splitkv.visible_keys(40, bound.get("causal", False), bound.get("window"))
    assert roles["key"].shape[2] == hi - lo


@needs_torch
def test_bshd_queries_with_rows_keep_their_layout(launches):
    import attn
    torch.manual_seed(6)
    q = torch.randn(2, 7, 8, 16).transpose(1, 2)  # [B, H=8, S=7, D] in [B, S, H, D] memory
    k, v = torch.randn(2, 2, 60, 16), torch.randn(2, 2, 60, 16)
    out = attn.attention(q, k, v, num_splits=2)
    torch.testing.assert_close(out.double(), _reference(q, k, v)[0], rtol=1e-5, atol=1e-5)
    assert out.stride(1) < out.stride(2)


@needs_torch
def test_masked_calls_are_not_rewritten(launches, monkeypatch):
    import attn
    import attn.ops as O
    calls = []
    monkeypatch.setattr(O, "attention_op", lambda *a: calls.append(a) or (None, None))
    q = torch.randn(1, 4, 1, 16)
    k = torch.randn(1, 2, 2048, 16)
    attn.attention(q, k, k, alibi_slopes=torch.ones(4))
    attn.attention(q, k, k, mask_mod="k < 100")
    attn.attention(q.expand(1, 4, 2, 16), k, k, causal=True)
    assert len(calls) == 3 and all(a[0].shape[1] == 4 for a in calls)  # q as given
    with pytest.raises(AttnArgumentError, match="position-free"):
        attn.attention(q, k, k, score_mod="score * 2", num_splits=2)


@needs_torch
def test_rows_that_see_no_key_stay_zero(launches):
    import attn
    q = torch.randn(1, 4, 1, 16)
    k = torch.randn(1, 2, 0, 16)
    out, lse = attn.attention(q, k, k, return_lse=True)
    assert (out == 0).all() and torch.isneginf(lse).all()


@needs_torch
def test_merge_of_parts():
    from attn.ops import _merge_parts
    outs = torch.randn(2, 3, 4, 5).bfloat16()  # [B, part, row, Dv]
    lses = torch.randn(2, 3, 4) * 20
    lses[0, 2, 0] = -math.inf          # row 0 of batch 0: part 2 saw no key
    out, lse = _merge_parts(outs, lses, 1)
    assert out.shape == (2, 4, 5) and lse.shape == (2, 4) and out.dtype == torch.bfloat16
    assert not out.isnan().any() and not lse.isnan().any()
    for b, r in ((0, 0), (1, 3)):
        w = torch.softmax(lses[b, :, r], 0)
        torch.testing.assert_close(out[b, r].float(), (w[:, None] * outs[b, :, r].float()).sum(0),
                                   rtol=1e-2, atol=1e-2)
        torch.testing.assert_close(lse[b, r], torch.logsumexp(lses[b, :, r], 0))
    alone, none = _merge_parts(outs, lses, 1, need_lse=False)
    assert none is None and torch.equal(alone, out)


@needs_torch
def test_a_missing_rewritten_kernel_falls_back_to_the_call_as_given(monkeypatch):
    import attn
    import attn.ops as O
    from attn.kernels import KernelNotFoundError
    from attn import spec as S
    monkeypatch.setattr(S, "check_device", lambda named: None)
    monkeypatch.setattr(O, "_UNPLANNED", set())
    specs = []

    def launch(spec, roles, device, alternative=None):
        specs.append(spec)
        if "mask" not in spec:
            raise KernelNotFoundError("no unmasked kernel here")
        out, lse = _reference(roles["query"], roles["key"], roles["value"], causal=True)
        roles["out"].copy_(out)
        roles["lse"].copy_(lse)
    monkeypatch.setattr(O, "_launch", launch)
    q, k = torch.randn(1, 4, 1, 16), torch.randn(1, 2, 30, 16)
    for _ in range(2):
        out = attn.attention(q, k, k, causal=True)
        torch.testing.assert_close(out.double(), _reference(q, k, k, causal=True)[0])
    # Tried once, then the call as given only.
    assert ["mask" in s for s in specs] == [False, True, True]
    with pytest.raises(KernelNotFoundError):
        attn.attention(q, torch.randn(1, 2, 32, 16), torch.randn(1, 2, 32, 16), causal=True,
                       num_splits=2)
