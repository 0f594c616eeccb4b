"""PyTorch custom ops over attn kernels: attention, linear_attention,
gated_linear_attention.

    import attn
    out = attn.attention(q, k, v, causal=True)                  # q, k, v [B, H, S, D]
    out, lse = attn.attention(q, k, v, window=(255, 0), causal=True, return_lse=True)
    out = attn.attention(q, k, v, score_mod="score + bias[h, k]", tensors={"bias": bias})

Each call is described by a spec (attn/spec.py); its kernel is found by the
spec's name in the ahead-of-time directories or compiled on first use where a
compiler is available (attn/kernels.py), then launched on the current CUDA
stream through libattn_runtime.so (attn/runtime.py).

The ops are registered with torch.library as attn::attention,
attn::linear_attention and attn::gated_linear_attention, with fake
implementations, so torch.compile(fullgraph=True) traces them without graph
breaks. They are functional (every output is a new tensor) and forward-only
(no autograd formula).
"""
import functools
import math
from typing import List, Optional, Tuple

import torch

from . import spec as S
from . import splitkv
from .kernels import KernelNotFoundError, chip_for_capability, get_kernel
from .spec import AttnArgumentError

Tensor = torch.Tensor
_DT = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def _info(t):
    return S.TensorInfo(tuple(t.shape), tuple(t.stride()), str(t.dtype).split(".")[-1],
                        str(t.device))


def _opt_info(t):
    return None if t is None else _info(t)


def _static(n):
    """A Python int for a size the kernel is specialized on (guards a SymInt)."""
    return int(n)


# --------------------------------------------------------------------------
# Memory: outputs in the kernel's layout, inputs copied only when the kernel
# cannot read them as they are.

def _empty_head(like, B, H, S_, D, layout, dtype=None):
    """A new logical [B, H, S, D] tensor stored in `layout`."""
    if layout == "bhsd":
        stride = (H * S_ * D, S_ * D, D, 1)
    else:
        stride = (S_ * H * D, D, H * D, 1)
    return torch.empty_strided((B, H, S_, D), stride, dtype=dtype or like.dtype,
                               device=like.device)


def _conform(t, layout, rows=True):
    """`t` if a `layout` kernel can read it as it is (its strides, and with `rows`
    16-byte aligned rows), else a copy in that layout."""
    ok = S.fits_layout(tuple(t.shape), t.stride(), layout)
    if ok and rows:
        ok = S.aligned(t.data_ptr(), tuple(t.shape), t.stride(), t.element_size())
    elif ok:
        ok = t.data_ptr() % S.ROW_ALIGN == 0
    if ok:
        return t
    if layout == "bhsd" or t.dim() < 3:
        return t.clone(memory_format=torch.contiguous_format)
    return t.transpose(1, 2).clone(memory_format=torch.contiguous_format).transpose(1, 2)


def _dense(t, dtype):
    """`t` as a contiguous tensor of `dtype` (a copy only if needed)."""
    if t.dtype != dtype:
        if dtype == torch.uint8 and t.dtype in (torch.bool, torch.int8):
            t = t.view(dtype)  # same bytes, no copy
        else:
            t = t.to(dtype)
    return t.contiguous()


def _int_or_float(t):
    return _dense(t, torch.float32 if t.is_floating_point() else torch.int32)


_LAID_OUT = ("query", "key", "value", "out", "gates")


# The inputs a kernel may read through TMA tensor maps: passed to _launch as the
# caller gave them and conformed to the spec's layout only where the kernel
# reads them another way (see _bind).
_MAPPED = ("query", "key", "value")


def _bind(kernel, layout, roles):
    """`roles` with each of _MAPPED as it is where `kernel` reads it only through
    a tensor map encoded from its own strides (Hopper kernels: e.g. the slices
    of a packed QKV projection, no copy) and a TMA map can describe it, else
    conformed to `layout`."""
    takes = getattr(kernel, "cached_any_strides", frozenset())
    bound = dict(roles)
    for r in _MAPPED:
        t = bound.get(r)
        if t is None:
            continue
        if not (r in takes and S.tma_readable(t.data_ptr(), tuple(t.shape), t.stride(),
                                              t.element_size())):
            bound[r] = _conform(t, layout)
    return bound


def _launch(spec, roles, device, alternative=None):
    """Resolves the kernel for `spec` and launches it on the current stream of `device`.

    The _MAPPED roles may come in any strides: each is conformed to the spec's
    layout unless the kernel takes it as it is (_bind). `alternative` (a
    function of a layout returning the spec in that layout) is tried when no
    kernel exists for `spec` and every laid-out tensor is also dense in the
    other layout (extents of 1 make [B, H, S, D] and [B, S, H, D] coincide,
    e.g. one query row while decoding), so a directory holding only one of the
    two kernels serves such calls too."""
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        stream = torch.cuda.current_stream(device).cuda_stream or None
    else:  # only reached when tests bypass the device check
        capability, stream = None, None
    chip = chip_for_capability(capability)
    try:
        kernel = get_kernel(spec, chip, capability)
    except KernelNotFoundError:
        roles = {r: _conform(t, spec["layout"]) if r in _MAPPED else t
                 for r, t in roles.items()}
        other = "bshd" if spec["layout"] == "bhsd" else "bhsd"
        if alternative is None or not all(
                S.fits_layout(tuple(t.shape), t.stride(), other)
                for r, t in roles.items() if r in _LAID_OUT):
            raise
        try:
            spec = alternative(other)
            kernel = get_kernel(spec, chip, capability)
        except KernelNotFoundError:
            pass
        else:
            return _launch_kernel(kernel, spec, roles, stream)
        raise
    return _launch_kernel(kernel, spec, roles, stream)


# The dynamic tile scheduler's counter (attn-compile --dynamic-scheduler): an
# int32 tensor of one element, zero at every launch, the kernel's last
# argument. Made here on the launch's device (the caching allocator, in
# stream order, and a CUDA graph's pool while one is captured), so callers
# never pass it; left uninitialized, since the runtime zeroes it on the launch
# stream before the kernel (one small kernel less per call).
TILE_COUNTER = "tile_counter"


def _role_argument(roles, role):
    if role == TILE_COUNTER and role not in roles:
        return torch.empty(1, dtype=torch.int32, device=roles["query"].device)
    return roles[role]


def _launch_kernel(kernel, spec, roles, stream):
    roles = _bind(kernel, spec.get("layout", "bhsd"), roles)
    try:
        args = [_role_argument(roles, r) for r in kernel.cached_roles]
    except KeyError as e:
        raise AttnArgumentError(f"kernel {spec['name']} expects argument {e.args[0]!r}, which "
                                "this call does not provide") from None
    kernel.launch(*args, stream=stream)
    return kernel


# --------------------------------------------------------------------------
# Specs from op arguments (cached: a call's spec costs a dict lookup).

@functools.lru_cache(maxsize=4096)
def _attention_spec_cached(*key):
    (dtype, d, dv, layout, causal, window, block, documents, alibi, softcap, score_mod,
     mask_mod, scale, tensors) = key
    return S.attention_spec(dtype=dtype, head_dim=d, head_dim_v=dv, layout=layout,
                            causal=causal, window=window, block_size=block,
                            documents=documents, alibi=alibi, softcap=softcap,
                            score_mod=score_mod, mask_mod=mask_mod, scale=scale,
                            tensors=dict(tensors) if tensors else None)


def _tensor_map(tensors, tensor_names):
    names = [n for n in tensor_names.split(",") if n] if tensor_names else []
    if len(names) != len(tensors):
        raise AttnArgumentError(f"tensors: {len(tensors)} tensors for {len(names)} names")
    return dict(zip(names, tensors))


def _attention_prepare(q, k, v, block_mask, q_doc_ids, kv_doc_ids, alibi_slopes, tensors,
                       tensor_names, causal, window, block_size, softcap, score_mod, mask_mod,
                       scale, layout):
    tmap = _tensor_map(tensors, tensor_names)
    alibi = S.check_attention(
        _info(q), _info(k), _info(v), block_mask=_opt_info(block_mask),
        block_size=None if block_size is None else tuple(block_size),
        q_doc_ids=_opt_info(q_doc_ids), kv_doc_ids=_opt_info(kv_doc_ids),
        alibi_slopes=_opt_info(alibi_slopes), tensors={n: _info(t) for n, t in tmap.items()})
    decls = tuple((n, (S.tensor_spec_dtype(_info(t)), t.dim())) for n, t in sorted(tmap.items()))
    spec = _attention_spec_cached(
        S.spec_dtype(q.dtype), _static(q.shape[3]), _static(v.shape[3]), layout, causal,
        None if window is None else tuple(window),
        None if block_mask is None else S.normalize_block_size(
            None if block_size is None else tuple(block_size)),
        q_doc_ids is not None, alibi, softcap, score_mod, mask_mod, scale, decls)
    return spec, tmap


@torch.library.custom_op("attn::attention", mutates_args=())
def attention_op(q: Tensor, k: Tensor, v: Tensor, block_mask: Optional[Tensor],
                 q_doc_ids: Optional[Tensor], kv_doc_ids: Optional[Tensor],
                 alibi_slopes: Optional[Tensor], tensors: List[Tensor], tensor_names: str,
                 causal: bool, window: Optional[List[int]], block_size: Optional[List[int]],
                 softcap: Optional[float], score_mod: Optional[str], mask_mod: Optional[str],
                 scale: Optional[float], layout: str) -> Tuple[Tensor, Tensor]:
    spec, tmap = _attention_prepare(q, k, v, block_mask, q_doc_ids, kv_doc_ids, alibi_slopes,
                                    tensors, tensor_names, causal, window, block_size, softcap,
                                    score_mod, mask_mod, scale, layout)
    B, Hq, Sq, _ = q.shape
    Sk, Dv = k.shape[2], v.shape[3]
    out = _empty_head(q, B, Hq, Sq, Dv, layout)
    lse = torch.empty((B, Hq, Sq), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse
    if Sk == 0:  # no key at all: every row is fully masked
        out.zero_()
        lse.fill_(-math.inf)
        return out, lse
    roles = {"query": q, "key": k, "value": v, "out": out, "lse": lse}
    if block_mask is not None:
        roles["block_mask"] = _dense(block_mask, torch.uint8)
    if q_doc_ids is not None:
        roles["q_doc_ids"] = _dense(q_doc_ids, torch.int32)
        roles["kv_doc_ids"] = _dense(kv_doc_ids, torch.int32)
    if alibi_slopes is not None:
        roles["alibi_slopes"] = _dense(alibi_slopes, torch.float32)
    for n, t in tmap.items():
        roles["tensor:" + n] = _int_or_float(t)

    def alternative(other):
        return _attention_prepare(q, k, v, block_mask, q_doc_ids, kv_doc_ids, alibi_slopes,
                                  tensors, tensor_names, causal, window, block_size, softcap,
                                  score_mod, mask_mod, scale, other)[0]

    _launch(spec, roles, q.device, alternative)
    return out, lse


@attention_op.register_fake
def _attention_fake(q, k, v, block_mask, q_doc_ids, kv_doc_ids, alibi_slopes, tensors,
                    tensor_names, causal, window, block_size, softcap, score_mod, mask_mod,
                    scale, layout):
    _attention_prepare(q, k, v, block_mask, q_doc_ids, kv_doc_ids, alibi_slopes, tensors,
                       tensor_names, causal, window, block_size, softcap, score_mod, mask_mod,
                       scale, layout)
    B, Hq, Sq, _ = q.shape
    out = _empty_head(q, B, Hq, Sq, v.shape[3], layout)
    lse = q.new_empty((B, Hq, Sq), dtype=torch.float32)
    return out, lse


# --------------------------------------------------------------------------
# Linear kinds.

@functools.lru_cache(maxsize=1024)
def _linear_spec_cached(*key):
    kind, dtype, d, dv, layout, feature_map, normalize, gate, scale, h0, ht = key
    if kind == "linear_attention":
        return S.linear_attention_spec(dtype=dtype, head_dim=d, head_dim_v=dv, layout=layout,
                                       feature_map=feature_map, normalize=normalize,
                                       scale=scale, initial_state=h0, final_state=ht)
    return S.gated_linear_attention_spec(dtype=dtype, head_dim=d, head_dim_v=dv, layout=layout,
                                         gate=gate, scale=scale, initial_state=h0,
                                         final_state=ht)


def _linear_prepare(kind, q, k, v, g, initial_state, feature_map, normalize, scale,
                    final_state, layout):
    gate = S.check_linear(_info(q), _info(k), _info(v), g=_opt_info(g),
                          initial_state=_opt_info(initial_state))
    return _linear_spec_cached(kind, S.spec_dtype(q.dtype), _static(q.shape[3]),
                               _static(v.shape[3]), layout, feature_map, normalize, gate, scale,
                               initial_state is not None, final_state)


def _linear_outputs(q, v, layout, final_state):
    B, H, S_, D = q.shape
    Dv = v.shape[3]
    out = _empty_head(q, B, H, S_, Dv, layout)
    ht = q.new_empty((B, H, D, Dv) if final_state else (0,), dtype=torch.float32)
    return out, ht


def _linear_run(spec, q, k, v, g, initial_state, final_state, layout, alternative):
    out, ht = _linear_outputs(q, v, layout, final_state)
    if out.numel() == 0:  # no step: the final state is the initial one
        if final_state:
            if initial_state is None:
                ht.zero_()
            else:
                ht.copy_(initial_state)
        return out, ht
    roles = {"query": q, "key": k, "value": v, "out": out}
    if g is not None:
        g32 = g if g.dtype == torch.float32 else g.to(torch.float32)
        roles["gates"] = _conform(g32, layout, rows=False)
    if initial_state is not None:
        h0 = initial_state if initial_state.dtype == torch.float32 else \
            initial_state.to(torch.float32)
        roles["initial_state"] = _conform(h0, "bhsd", rows=False)
    if final_state:
        roles["final_state"] = ht
    _launch(spec, roles, q.device, alternative)
    return out, ht


@torch.library.custom_op("attn::linear_attention", mutates_args=())
def linear_attention_op(q: Tensor, k: Tensor, v: Tensor, initial_state: Optional[Tensor],
                        feature_map: str, normalize: bool, scale: Optional[float],
                        final_state: bool, layout: str) -> Tuple[Tensor, Tensor]:
    def prepare(lay):
        return _linear_prepare("linear_attention", q, k, v, None, initial_state, feature_map,
                               normalize, scale, final_state, lay)

    return _linear_run(prepare(layout), q, k, v, None, initial_state, final_state, layout,
                       prepare)


@linear_attention_op.register_fake
def _linear_attention_fake(q, k, v, initial_state, feature_map, normalize, scale, final_state,
                           layout):
    _linear_prepare("linear_attention", q, k, v, None, initial_state, feature_map, normalize,
                    scale, final_state, layout)
    return _linear_outputs(q, v, layout, final_state)


@torch.library.custom_op("attn::gated_linear_attention", mutates_args=())
def gated_linear_attention_op(q: Tensor, k: Tensor, v: Tensor, g: Tensor,
                              initial_state: Optional[Tensor], scale: Optional[float],
                              final_state: bool, layout: str) -> Tuple[Tensor, Tensor]:
    def prepare(lay):
        return _linear_prepare("gated_linear_attention", q, k, v, g, initial_state, "identity",
                               False, scale, final_state, lay)

    return _linear_run(prepare(layout), q, k, v, g, initial_state, final_state, layout,
                       prepare)


@gated_linear_attention_op.register_fake
def _gated_linear_attention_fake(q, k, v, g, initial_state, scale, final_state, layout):
    _linear_prepare("gated_linear_attention", q, k, v, g, initial_state, "identity", False,
                    scale, final_state, layout)
    return _linear_outputs(q, v, layout, final_state)


# --------------------------------------------------------------------------
# The Python API. These run under torch.compile's tracing too, so they only
# normalize plain option values and pick the layout; the ops check the rest.

def _require_tensors(**named):
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise AttnArgumentError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")


def _layout(*tensors):
    return S.choose_layout(*[(tuple(t.shape), tuple(t.stride())) for t in tensors])


def _scale(scale):
    return None if scale is None else S._positive_float("scale", scale)


def attention(q, k, v, *, causal=False, window=None, block_mask=None, block_size=None,
              doc_ids=None, alibi_slopes=None, softcap=None, score_mod=None, mask_mod=None,
              tensors=None, scale=None, return_lse=False, num_splits=None):
    """Softmax attention over q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv]
    (CUDA; f16, bf16 or f32; any strides with a unit last one; Hkv dividing Hq).

    causal: bool, aligned bottom-right (key j visible to query i iff j <= i + Sk - Sq).
    window: (left, right) keys around that diagonal, or an int W = (W, 0).
    block_mask: bool/uint8 [B or 1, Hq or 1, ceil(Sq/bq), ceil(Sk/bk)], blocks of
        block_size = (bq, bk) (an int for both; default 128).
    doc_ids: int [B, S] (Sq == Sk) or a pair (q_doc_ids [B, Sq], kv_doc_ids [B, Sk]).
    alibi_slopes: float [Hq] or [B, Hq]. softcap: c in c * tanh(s / c).
    score_mod / mask_mod: expression strings (docs/spec-format.md), e.g.
        "score + bias[h, k]", "q - k < 256"; tensors: {name: tensor} they read.
    scale: default 1/sqrt(D). Returns out [B, Hq, Sq, Dv] in q's dtype (in q's
    memory layout, [B, H, S, D] or [B, S, H, D]), and with return_lse also
    lse [B, Hq, Sq] float32 (natural log; -inf for rows that see no key, whose
    out is 0).

    Decoding shapes (few query rows; no mask other than causal / window with
    one row, no ALiBi or custom expression) run with the query heads of a KV
    head packed into query rows and, where the work items would leave SMs idle,
    the keys split into num_splits parts merged by their LSE (attn/splitkv.py).
    num_splits: None chooses per call (1 off the GPU), 1 never splits, n > 1
    splits into n equal parts (an error where the call or k / v's strides do
    not allow it).
    """
    _require_tensors(q=q, k=k, v=v)
    if doc_ids is None:
        q_ids = kv_ids = None
    elif isinstance(doc_ids, (tuple, list)):
        if len(doc_ids) != 2:
            raise AttnArgumentError("doc_ids: expected a tensor or a pair "
                                    "(q_doc_ids, kv_doc_ids)")
        q_ids, kv_ids = doc_ids
        _require_tensors(q_doc_ids=q_ids, kv_doc_ids=kv_ids)
    else:
        _require_tensors(doc_ids=doc_ids)
        q_ids = kv_ids = doc_ids
        if q.dim() == 4 and k.dim() == 4 and q.shape[2] != k.shape[2]:
            raise AttnArgumentError(
                f"doc_ids: one tensor serves queries and keys only when Sq == Sk (got "
                f"Sq={q.shape[2]}, Sk={k.shape[2]}); pass doc_ids=(q_doc_ids, kv_doc_ids)")
    if block_mask is not None:
        if not isinstance(block_mask, torch.Tensor):
            raise AttnArgumentError(
                f"block_mask: expected a bool or uint8 tensor [B or 1, H or 1, ceil(Sq/bq), "
                f"ceil(Sk/bk)], got {type(block_mask).__name__}; for FlexAttention-style "
                "masks pass mask_mod as an expression string")
        block = list(S.normalize_block_size(block_size))
    elif block_size is not None:
        raise AttnArgumentError("block_size: given without block_mask")
    else:
        block = None
    if alibi_slopes is not None:
        _require_tensors(alibi_slopes=alibi_slopes)
    names, tlist = "", []
    if tensors:
        if not isinstance(tensors, dict):
            raise AttnArgumentError("tensors: expected a dict {name: tensor}")
        order = sorted(tensors)
        for n in order:
            if not isinstance(n, str):
                raise AttnArgumentError(f"tensors: names must be strings, got {n!r}")
            _require_tensors(**{f"tensors[{n!r}]": tensors[n]})
        names, tlist = ",".join(order), [tensors[n] for n in order]
    if not isinstance(causal, bool):
        raise AttnArgumentError(f"causal: expected a bool, got {causal!r}")
    w = S.normalize_window(window)
    softcap = None if softcap is None else S._positive_float("softcap", softcap)
    score_mod, mask_mod = S._expression("score_mod", score_mod), S._expression("mask_mod", mask_mod)
    scale = _scale(scale)
    position_free = (block_mask is None and q_ids is None and alibi_slopes is None and
                     score_mod is None and mask_mod is None and not tlist)
    plan = _decode_plan(q, k, v, position_free, causal, w, num_splits)
    out = None
    if plan is not None:
        forced = plan.splits > 1 and num_splits is not None  # the caller asked for parts
        miss = (plan, q.dtype, q.shape[3], v.shape[3], softcap, scale, str(q.device))
        if forced or miss not in _UNPLANNED:
            try:
                out, lse = _attention_planned(plan, q, k, v, softcap, scale, return_lse)
            except KernelNotFoundError:
                # The rewritten call needs the unmasked kernel of this dtype and
                # head dims (a causal or window bound is dropped for one query
                # row); a kernel directory without it still serves the call as
                # given, and is not searched again for it.
                if forced:
                    raise
                _UNPLANNED.add(miss)
    if out is None:
        out, lse = attention_op(
            q, k, v, block_mask, q_ids, kv_ids, alibi_slopes, tlist, names, causal,
            None if w is None else list(w), block, softcap, score_mod, mask_mod, scale,
            _layout(q, k, v))
    return (out, lse) if return_lse else out


# Calls (plan, dtype, D, Dv, softcap, scale, device) whose rewritten form found no kernel.
_UNPLANNED = set()


@functools.lru_cache(maxsize=None)
def _multiprocessors_of(index):
    return torch.cuda.get_device_properties(index).multi_processor_count


def _multiprocessors(device):
    """The CUDA device's SM count; None off CUDA or where no driver answers (fake
    tensors on a machine without a GPU: tracing only, no automatic split)."""
    if device.type != "cuda":
        return None
    try:
        return _multiprocessors_of(device.index if device.index is not None
                                   else torch.cuda.current_device())
    except (RuntimeError, AssertionError):
        return None


def _decode_plan(q, k, v, position_free, causal, window, num_splits):
    """splitkv.plan for this call (None: run it as given)."""
    if num_splits == 1 and q.dim() == 4 and q.shape[2] >= splitkv.SLICE_ROWS:
        return None  # nothing to pack or split: skip the checks below
    sms = _multiprocessors(q.device)
    key = (tuple(q.shape), tuple(k.shape), tuple(k.stride()), tuple(v.shape), tuple(v.stride()),
           position_free, causal, window, num_splits, sms)
    # Eager calls repeat their shapes (a decoding loop): the plan is remembered
    # (~1 us instead of ~12). Not while tracing, whose sizes may be symbolic,
    # nor for a num_splits that plan() will reject.
    cacheable = not torch.compiler.is_compiling() and isinstance(num_splits, (int, type(None)))
    if cacheable:
        plan = _PLANS.get(key, _PLANS)
        if plan is not _PLANS:
            return plan
    # The shapes are checked here as in the op, so that the plan reads valid ones.
    S.check_attention(_info(q), _info(k), _info(v))
    plan = splitkv.plan(*key[:5], position_free=position_free, causal=causal, window=window,
                        num_splits=num_splits, sms=sms)
    if cacheable:
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


# Plans of eager calls by (shapes, strides, options, SM count); see _decode_plan.
_PLANS = {}


def _key_parts(t, plan):
    """k or v [B, Hkv, S, D] as plan.splits parts of S / splits keys: [B, Hkv * n,
    S / n, D] (part j of head h is head h * n + j) or [B * n, Hkv, S / n, D]
    (part j of batch b is batch b * n + j), a view (splitkv.fold_of)."""
    B, H, S_, D = t.shape
    n = plan.splits
    L = S_ // n
    sb, sh, ss, sd = t.stride()
    if plan.fold == "heads":
        return t.as_strided((B, H * n, L, D), (sb, L * ss, ss, sd), t.storage_offset())
    return t.as_strided((B * n, H, L, D), (L * ss, sh, ss, sd), t.storage_offset())


def _attention_planned(plan, q, k, v, softcap, scale, need_lse=True):
    """attention(q, k, v) without masks, run as `plan` says (attn/splitkv.py);
    lse None unless need_lse."""
    B, Hq, Sq, D = q.shape
    Hkv, Dv = k.shape[1], v.shape[3]
    G = Hq // Hkv
    if plan.keys is not None:
        k, v = k[:, :, plan.keys[0]:plan.keys[1]], v[:, :, plan.keys[0]:plan.keys[1]]
    # Rows of one head: with packing, query head h = hkv * G + g's row i is
    # row g * Sq + i of head hkv (a view for one row or [B, H, S, D] order).
    H, R = (Hkv, G * Sq) if plan.pack else (Hq, Sq)
    qr = q.reshape(B, H, R, D) if plan.pack else q
    n = plan.splits
    g = H // Hkv  # query heads per KV head in the launch
    if n > 1:
        if plan.fold == "heads":  # head (hkv * n + j) * g + i: part j of query head hkv * g + i
            qr = qr.reshape(B, Hkv, 1, g, R, D).expand(B, Hkv, n, g, R, D).reshape(
                B, Hkv * n * g, R, D)
        else:                     # batch b * n + j
            qr = qr.unsqueeze(1).expand(B, n, H, R, D).reshape(B * n, H, R, D)
        k, v = _key_parts(k, plan), _key_parts(v, plan)
    out, lse = attention_op(qr, k, v, None, None, None, None, [], "", False, None, None, softcap,
                            None, None, scale, _layout(qr, k, v))
    if n > 1:
        if plan.fold == "heads":
            out, lse = out.reshape(B, Hkv, n, g, R, Dv), lse.reshape(B, Hkv, n, g, R)
            out, lse = _merge_parts(out, lse, 2, need_lse)
        else:
            out, lse = _merge_parts(out.reshape(B, n, H, R, Dv), lse.reshape(B, n, H, R), 1,
                                    need_lse)
    out = out.reshape(B, Hq, Sq, Dv)
    lse = None if lse is None else lse.reshape(B, Hq, Sq)
    if Sq > 1 and q.stride(1) < q.stride(2):  # q in [B, S, H, D] order: so is out
        out = out.transpose(1, 2).contiguous().transpose(1, 2)
    return out, lse


def _checking_on_host():
    """Whether values may be read back here: not while torch.compile traces, nor
    while a CUDA graph is captured (a read back would break either)."""
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def _lengths_and_ids(name, cu, total, device):
    """Per-sequence lengths and the sequence index of every token (int32 [1, total])
    from cumulative lengths `cu` [B + 1]."""
    if not isinstance(cu, torch.Tensor) or cu.dim() != 1 or cu.numel() < 2 or \
            cu.dtype not in (torch.int32, torch.int64):
        raise AttnArgumentError(f"{name}: expected an int32 or int64 tensor [B + 1] of "
                                "cumulative sequence lengths (0, len0, len0 + len1, ...)")
    if cu.device != device:
        raise AttnArgumentError(f"{name}: expected a tensor on {device} (with q, k, v), got "
                                f"one on {cu.device}")
    lengths = cu[1:] - cu[:-1]
    if _checking_on_host():
        # One read back per tensor, in eager mode only: a wrong cu_seqlens
        # would otherwise give ids that describe other sequences (a silent
        # wrong answer).
        first, last, shortest = torch.stack([cu[0], cu[-1], lengths.min()]).tolist()
        if first != 0 or last != total or shortest < 0:
            raise AttnArgumentError(
                f"{name}: expected 0 first, nondecreasing, and {total} (the tokens given) "
                f"last; got first {first}, last {last}, shortest sequence {shortest}")
    ids = torch.repeat_interleave(torch.arange(lengths.numel(), device=cu.device,
                                               dtype=torch.int32),
                                  lengths, output_size=total)
    return lengths, ids.view(1, total)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k=None, *, causal=False, window=None,
                     softcap=None, alibi_slopes=None, scale=None, return_lse=False):
    """FlashAttention's variable-length interface: B sequences stored back to back,
    q [total_q, Hq, D], k [total_k, Hkv, D], v [total_k, Hkv, Dv] (any strides with
    a unit last one), cu_seqlens_q / cu_seqlens_k int [B + 1] = (0, len0,
    len0 + len1, ..., total); cu_seqlens_k defaults to cu_seqlens_q (self-attention).

    Each query attends only to its own sequence's keys; causal and window are
    aligned bottom-right per sequence (key j of a sequence with Lk keys is visible
    to its query i of Lq iff j <= i + Lk - Lq, as FlashAttention does). Equal
    query and key lengths run as one document-masked launch ([1, H, total, D]
    views, no copy; our document tile classification skips every other
    sequence's tiles); unequal ones with causal or window add the per-sequence
    alignment as a mask expression over two small offset tensors. Returns out
    [total_q, Hq, Dv] and with return_lse also lse [Hq, total_q] float32 (FA's
    varlen layouts; rows that see no key, e.g. queries past a shorter sequence's
    keys, give out 0 and lse -inf, where FlashAttention gives +inf). In eager mode
    cu_seqlens are checked (one read back each; not while torch.compile traces or
    a CUDA graph is captured). alibi_slopes: [Hq], -slope * |i + Lk - Lq - j|
    within each sequence.
    """
    _require_tensors(q=q, k=k, v=v)
    for n, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 3:
            raise AttnArgumentError(f"{n}: expected [total, H, D] (sequences back to back), "
                                    f"got {list(t.shape)}")
    if k.shape[0] != v.shape[0]:
        raise AttnArgumentError(f"k and v: expected the same number of tokens, got "
                                f"{k.shape[0]} and {v.shape[0]}")
    same = cu_seqlens_k is None or cu_seqlens_k is cu_seqlens_q
    if cu_seqlens_k is None:
        cu_seqlens_k = cu_seqlens_q
    q_len, q_ids = _lengths_and_ids("cu_seqlens_q", cu_seqlens_q, q.shape[0], q.device)
    k_len, k_ids = _lengths_and_ids("cu_seqlens_k", cu_seqlens_k, k.shape[0], q.device)
    if q_len.numel() != k_len.numel():
        raise AttnArgumentError(f"cu_seqlens_q and cu_seqlens_k: {q_len.numel()} and "
                                f"{k_len.numel()} sequences")
    if not same and _checking_on_host():
        same = bool(torch.equal(cu_seqlens_q.long(), cu_seqlens_k.long()))
    q4, k4, v4 = (t.unsqueeze(0).transpose(1, 2) for t in (q, k, v))  # [1, H, total, D]
    w = S.normalize_window(window)
    kw = dict(softcap=softcap, alibi_slopes=alibi_slopes, scale=scale, return_lse=True)
    if alibi_slopes is not None and alibi_slopes.dim() != 1:
        raise AttnArgumentError("alibi_slopes: expected [Hq] (one batch of packed sequences)")
    if same or (not causal and w is None and alibi_slopes is None):
        # Equal lengths: the global diagonal is every sequence's own (and so is
        # ALiBi's distance |i + Sk - Sq - j| = |i - j| within a sequence).
        out, lse = attention(q4, k4, v4, causal=causal, window=w, doc_ids=(q_ids, k_ids), **kw)
    else:
        # Token offsets that put each sequence's diagonal at 0: key j of a sequence
        # starting at ks is koff = j - ks; query i of one starting at qs sees keys
        # with koff <= qoff = i - qs + Lk - Lq (causal), and koff >= qoff - left.
        seq_q, seq_k = q_ids[0].long(), k_ids[0].long()
        qoff = (torch.arange(q.shape[0], device=q.device) - cu_seqlens_q[seq_q]
                + (k_len - q_len)[seq_q]).to(torch.int32)
        koff = (torch.arange(k.shape[0], device=k.device) - cu_seqlens_k[seq_k]).to(torch.int32)
        left = w[0] if w is not None else None
        right = 0 if causal else (w[1] if w is not None else None)  # causal: the intersection
        terms = []
        if right is not None:
            terms.append(f"koff[k] <= qoff[q] + {right}")
        if left is not None:
            terms.append(f"koff[k] >= qoff[q] - {left}")
        tensors = {"qoff": qoff, "koff": koff}
        score_mod = None
        if alibi_slopes is not None:
            # ALiBi from each sequence's own diagonal, after the soft-cap as the
            # built-in one (docs/spec-format.md: soft-cap, ALiBi, custom score).
            score_mod = "score - slopes[h] * abs(qoff[q] - koff[k])"
            tensors["slopes"] = alibi_slopes
            kw["alibi_slopes"] = None
        out, lse = attention(q4, k4, v4, doc_ids=(q_ids, k_ids),
                             mask_mod=" && ".join(terms) if terms else None,
                             score_mod=score_mod, tensors=tensors, **kw)
    out = out[0].transpose(0, 1)  # [total_q, Hq, Dv]
    return (out, lse[0]) if return_lse else out


def _merge_parts(outs, lses, dim, need_lse=True):
    """merge_attention over parts stacked along `dim` (outs [..., Dv], lses float32)
    in 4 kernels (and the lse only when asked for): this runs after every split
    decoding launch, where each small kernel's host time (~5-15 us) is a few
    percent of the attention. Every row must have been seen by some part (a
    split call has no mask and no empty part, splitkv.plan): a row no part saw
    would give NaN. Forward only (attention has no autograd formula)."""
    weight = torch.softmax(lses, dim)
    out = (weight.unsqueeze(-1) * outs).sum(dim)                    # float32
    lse = torch.logsumexp(lses, dim) if need_lse else None
    return out.to(outs.dtype), lse


def merge_attention(outs, lses):
    """Merges partial results of softmax attention over disjoint sets of keys into
    the result over their union: split-KV decoding, ring (context-parallel)
    attention, a KV cache in pages. Each (outs[i], lses[i]) is what
    attention(q, k_i, v_i, return_lse=True) returns for one part k_i, v_i of the
    keys, with the same queries, scale and score modification (masks may differ
    per part, e.g. causal only on the part holding the diagonal):

        lse = log(sum_i exp(lses[i])),   out = sum_i exp(lses[i] - lse) * outs[i]

    outs: tensors [B, H, S, Dv] (same shape, dtype and device); lses: float32
    [B, H, S]. Computed in float32 with plain torch ops (differentiable).
    Returns (out in outs' dtype, contiguous, and lse float32). Rows no part saw
    (every lse -inf) give out 0 and lse -inf, as attention does; never NaN.
    """
    if not isinstance(outs, (list, tuple)) or not isinstance(lses, (list, tuple)):
        raise AttnArgumentError("merge_attention: expected lists (outs, lses) of the parts' "
                                "outputs and log-sum-exps")
    if not outs or len(outs) != len(lses):
        raise AttnArgumentError(f"merge_attention: {len(outs)} outputs and {len(lses)} lses; "
                                "expected the same number, at least one")
    _require_tensors(**{f"outs[{i}]": o for i, o in enumerate(outs)})
    _require_tensors(**{f"lses[{i}]": x for i, x in enumerate(lses)})
    o0 = outs[0]
    if o0.dim() != 4 or not o0.is_floating_point():
        raise AttnArgumentError(f"outs[0]: expected a floating-point [B, H, S, Dv] tensor, got "
                                f"{o0.dtype} {list(o0.shape)}")
    for i, (o, x) in enumerate(zip(outs, lses)):
        if o.shape != o0.shape or o.dtype != o0.dtype or o.device != o0.device:
            raise AttnArgumentError(f"outs[{i}]: expected {o0.dtype} {list(o0.shape)} on "
                                    f"{o0.device} like outs[0], got {o.dtype} {list(o.shape)} "
                                    f"on {o.device}")
        if x.shape != o0.shape[:3] or x.dtype != torch.float32 or x.device != o0.device:
            raise AttnArgumentError(f"lses[{i}]: expected float32 {list(o0.shape[:3])} on "
                                    f"{o0.device}, got {x.dtype} {list(x.shape)} on {x.device}")
    lse = torch.stack(list(lses))                       # [N, B, H, S]
    top = lse.amax(0)
    # Rows that no part saw: every exponent -inf; shift by 0 so that they stay
    # 0 / -inf instead of becoming NaN (-inf - -inf).
    top = torch.where(torch.isneginf(top), torch.zeros_like(top), top)
    weight = torch.exp(lse - top)                       # exp(-inf) = 0 for empty parts
    total = weight.sum(0)
    seen = total > 0
    safe_total = torch.where(seen, total, torch.ones_like(total))
    # -inf for unseen rows, with finite gradients (log(0) would give NaN ones).
    merged_lse = torch.where(seen, top + torch.log(safe_total), torch.full_like(top, -math.inf))
    weight = weight / safe_total
    out = sum(w.unsqueeze(-1) * o.float() for w, o in zip(weight, outs))
    return out.to(o0.dtype).contiguous(), merged_lse


def linear_attention(q, k, v, *, feature_map="identity", normalize=False, scale=None,
                     initial_state=None, return_final_state=False):
    """Causal linear attention over q, k [B, H, S, D], v [B, H, S, Dv]:
    state S_t = S_{t-1} + phi(k_t) v_t^T, out_t = scale * phi(q_t)^T S_t, or with
    normalize phi(q_t)^T S_t / (phi(q_t) . sum_{s<=t} phi(k_s)).
    feature_map: "identity", "elu_plus_one" or "relu". initial_state: float32
    [B, H, D, Dv]. Returns out [B, H, S, Dv] (and with return_final_state the
    float32 final state [B, H, D, Dv])."""
    _require_tensors(q=q, k=k, v=v)
    if initial_state is not None:
        _require_tensors(initial_state=initial_state)
    if feature_map not in S.FEATURE_MAPS:
        raise AttnArgumentError(f"feature_map: expected one of {', '.join(S.FEATURE_MAPS)}, "
                                f"got {feature_map!r}")
    if not isinstance(normalize, bool) or not isinstance(return_final_state, bool):
        raise AttnArgumentError("normalize and return_final_state must be bools")
    if normalize and (initial_state is not None or return_final_state):
        raise AttnArgumentError("normalize=True cannot be combined with initial_state or "
                                "return_final_state: the normalizer is not part of the "
                                "carried state")
    out, ht = linear_attention_op(q, k, v, initial_state, feature_map, normalize,
                                  _scale(scale), return_final_state, _layout(q, k, v))
    return (out, ht) if return_final_state else out


def gated_linear_attention(q, k, v, g, *, scale=None, initial_state=None,
                           return_final_state=False):
    """Gated linear attention: S_t = exp(g_t) S_{t-1} + k_t v_t^T, out_t = scale * q_t^T S_t,
    with log-space gates g: [H] (one per head), [B, H, S] (one per head and step) or
    [B, H, S, D] (per key channel, GLA). initial_state: float32 [B, H, D, Dv].
    Returns out [B, H, S, Dv] (and with return_final_state the float32 final state)."""
    _require_tensors(q=q, k=k, v=v, g=g)
    if initial_state is not None:
        _require_tensors(initial_state=initial_state)
    if not isinstance(return_final_state, bool):
        raise AttnArgumentError("return_final_state must be a bool")
    out, ht = gated_linear_attention_op(q, k, v, g, initial_state, _scale(scale),
                                        return_final_state, _layout(q, k, v))
    return (out, ht) if return_final_state else out
