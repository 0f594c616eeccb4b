"""Specs for the PyTorch binding, and its argument checks. No torch here.

The binding (attn/ops.py) describes every call by a spec in the repository's
format (docs/spec-format.md) and names the kernel after a hash of the spec's
canonical JSON, so that a kernel compiled ahead of time by `attn-compile` from
the same spec is found by name. Everything that decides that spec, and every
check of the arguments that needs only shapes, strides, dtypes and devices,
lives here so that it is testable without torch and without a GPU:

    spec = attention_spec(dtype="bf16", head_dim=128, causal=True)
    spec["name"]                       # 'attn_3f0c...' (kernel_name of the rest)
    canonical_json(spec)               # what the name hashes

Tensors are described by `TensorInfo(shape, stride, dtype, device)` (dtype as
torch names it: "bfloat16"; device as str(tensor.device): "cuda:0").

Kernels are generic in batch, heads and sequence lengths (all `null` in the
spec); they are specialized on the element type, the head dimensions, the
memory layout and the variant's options (mask, score modifiers, scale, ...).
"""
import collections
import hashlib
import json
import math
import re

# torch dtype name -> spec dtype.
SPEC_DTYPES = {"float16": "f16", "bfloat16": "bf16", "float32": "f32"}
ITEMSIZE = {"f16": 2, "bf16": 2, "f32": 4}
LAYOUTS = ("bhsd", "bshd")
FEATURE_MAPS = ("identity", "elu_plus_one", "relu")
# Names of the expression language (docs/spec-format.md, "Tensors").
RESERVED = {"b", "h", "q", "k", "score", "Sq", "Sk", "select", "min", "max", "abs", "exp",
            "tanh", "true", "false"}
KIND_PREFIX = {"attention": "attn", "linear_attention": "lin", "gated_linear_attention": "gla"}
# Every row of Q/K/V/out is read and written with 16-byte vector accesses.
ROW_ALIGN = 16


class AttnArgumentError(ValueError):
    """A call the binding refuses, with a message naming the argument."""


TensorInfo = collections.namedtuple("TensorInfo", "shape stride dtype device")


def _fail(msg):
    raise AttnArgumentError(msg)


# --------------------------------------------------------------------------
# Canonical JSON and kernel names.

def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def kernel_name(spec):
    """`<prefix>_<16 hex>`: the SHA-256 of the canonical JSON of `spec` without its name."""
    body = {k: v for k, v in spec.items() if k != "name"}
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return f"{KIND_PREFIX[spec['kind']]}_{digest[:16]}"


def _named(spec):
    spec["name"] = kernel_name(spec)
    return spec


# --------------------------------------------------------------------------
# Option values (plain Python; attn/ops.py also calls these while torch.compile
# traces, so they stay simple).

def spec_dtype(dtype):
    """A torch dtype name ("bfloat16", "torch.bfloat16") or spec dtype ("bf16") -> spec dtype."""
    name = str(dtype).split(".")[-1]
    if name in SPEC_DTYPES:
        return SPEC_DTYPES[name]
    if name in ITEMSIZE:
        return name
    _fail(f"dtype {name} is not supported; expected float16, bfloat16 or float32")


def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"{name}: expected a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0 and value <= 3.4e38):
        _fail(f"{name}: expected a positive finite number, got {value!r}")
    return value


def _bound(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"{name}: expected an integer, got {value!r}")
    if value < minimum or value > 2147483647:
        _fail(f"{name}: expected an integer in [{minimum}, 2147483647], got {value}")
    return value


def normalize_window(window):
    """None, an int W (= (W, 0): W keys to the left and the diagonal) or (left, right)."""
    if window is None:
        return None
    if isinstance(window, int) and not isinstance(window, bool):
        return (_bound("window", window, 0), 0)
    if isinstance(window, (tuple, list)) and len(window) == 2:
        left, right = window
        if left is None or right is None or (isinstance(left, int) and left < 0) or \
                (isinstance(right, int) and right < 0):
            _fail(f"window: both bounds must be integers >= 0, got {tuple(window)!r}; "
                  "for a one-sided window use causal=True with window=(left, 0)")
        return (_bound("window[0]", left, 0), _bound("window[1]", right, 0))
    _fail(f"window: expected None, an integer or a pair (left, right), got {window!r}")


def normalize_block_size(block_size):
    """The block-sparse layout's (block_q, block_k); an int means both; default 128."""
    if block_size is None:
        return (128, 128)
    if isinstance(block_size, int) and not isinstance(block_size, bool):
        b = _bound("block_size", block_size, 1)
        return (b, b)
    if isinstance(block_size, (tuple, list)) and len(block_size) == 2:
        return (_bound("block_size[0]", block_size[0], 1), _bound("block_size[1]", block_size[1], 1))
    _fail(f"block_size: expected an integer or a pair (block_q, block_k), got {block_size!r}")


def _expression(name, value):
    if value is None:
        return None
    if callable(value):
        _fail(f"{name}: expected an expression string in the spec syntax "
              "(docs/spec-format.md), e.g. "
              + ("'score + bias[h, k]'" if name == "score_mod" else "'k <= q + Sk - Sq'")
              + "; Python callables (FlexAttention style) are not supported")
    if not isinstance(value, str) or not value.strip():
        _fail(f"{name}: expected a non-empty expression string, got {value!r}")
    return value


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _tensor_decls(tensors, score_mod, mask_mod):
    """{name: (spec dtype "f32"|"i32", rank)} -> the spec's `tensors`, in name order."""
    if not tensors:
        return None
    if score_mod is None and mask_mod is None:
        _fail("tensors: given, but there is no score_mod or mask_mod expression to read them")
    text = (score_mod or "") + " " + (mask_mod or "")
    out = {}
    for name in sorted(tensors):
        dtype, rank = tensors[name]
        if not isinstance(name, str) or not _IDENT.match(name):
            _fail(f"tensors: {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        if name in RESERVED:
            _fail(f"tensors: {name!r} is a reserved name of the expression language")
        if dtype not in ("f32", "i32"):
            _fail(f"tensors[{name!r}]: expected a float32 or int32 tensor, got {dtype}")
        if not isinstance(rank, int) or rank < 1:
            _fail(f"tensors[{name!r}]: expected a tensor of rank >= 1, got rank {rank}")
        if not re.search(r"(?<![A-Za-z0-9_])" + name + r"(?![A-Za-z0-9_])", text):
            _fail(f"tensors[{name!r}]: declared but read by neither score_mod nor mask_mod")
        out[name] = {"dtype": dtype, "shape": [None] * rank}
    return out


def _common(kind, dtype, layout, scale):
    if layout not in LAYOUTS:
        _fail(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    spec = {"name": "", "kind": kind, "dtype": spec_dtype(dtype), "layout": layout}
    if scale is not None:
        spec["scale"] = _positive_float("scale", scale)
    return spec


def _head_dims(spec, head_dim, head_dim_v):
    head_dim = _bound("head_dim", head_dim, 1)
    head_dim_v = head_dim if head_dim_v is None else _bound("head_dim_v", head_dim_v, 1)
    size = ITEMSIZE[spec["dtype"]]
    for n, d in (("head_dim", head_dim), ("head_dim_v", head_dim_v)):
        if d * size % ROW_ALIGN:
            _fail(f"{n} {d}: rows of {spec['dtype']} must be a multiple of {ROW_ALIGN} bytes "
                  f"(head dims a multiple of {ROW_ALIGN // size})")
    return head_dim, head_dim_v


# --------------------------------------------------------------------------
# Specs.

def attention_spec(*, dtype, head_dim, head_dim_v=None, layout="bhsd", causal=False,
                   window=None, block_size=None, documents=False, alibi=None, softcap=None,
                   score_mod=None, mask_mod=None, scale=None, tensors=None):
    """The spec of a softmax attention call.

    block_size: None (no block-sparse mask) or the layout's (block_q, block_k);
    alibi: None, "per_head" (slopes [Hq]) or "per_batch_head" (slopes [B, Hq]);
    tensors: {name: ("f32" | "i32", rank)} read by the expressions.
    Always returns LSE (the kernels do).
    """
    spec = _common("attention", dtype, layout, scale)
    d, dv = _head_dims(spec, head_dim, head_dim_v)
    spec["shape"] = {"batch": None, "heads_q": None, "heads_kv": None, "seq_q": None,
                     "seq_k": None, "head_dim": d, "head_dim_v": dv}
    mask = {}
    if not isinstance(causal, bool):
        _fail(f"causal: expected a bool, got {causal!r}")
    if causal:
        mask["causal"] = True
    w = normalize_window(window)
    if w is not None:
        mask["window"] = {"left": w[0], "right": w[1]}
    if block_size is not None:
        bq, bk = normalize_block_size(block_size)
        mask["block_sparse"] = {"block_q": bq, "block_k": bk}
    if documents:
        mask["documents"] = True
    mask_mod = _expression("mask_mod", mask_mod)
    if mask_mod is not None:
        mask["custom"] = mask_mod
    if mask:
        spec["mask"] = mask
    score = {}
    if softcap is not None:
        score["softcap"] = _positive_float("softcap", softcap)
    if alibi is not None:
        if alibi not in ("per_head", "per_batch_head"):
            _fail(f"alibi: expected 'per_head' or 'per_batch_head', got {alibi!r}")
        score["alibi"] = alibi
    score_mod = _expression("score_mod", score_mod)
    if score_mod is not None:
        score["custom"] = score_mod
    if score:
        spec["score"] = score
    decls = _tensor_decls(tensors, score_mod, mask_mod)
    if decls:
        spec["tensors"] = decls
    spec["outputs"] = {"lse": True}
    return _named(spec)


def _state(spec, initial_state, final_state):
    if initial_state or final_state:
        spec["state"] = {"initial": bool(initial_state), "final": bool(final_state)}


def linear_attention_spec(*, dtype, head_dim, head_dim_v=None, layout="bhsd",
                          feature_map="identity", normalize=False, scale=None,
                          initial_state=False, final_state=False):
    """The spec of a causal linear attention call."""
    spec = _common("linear_attention", dtype, layout, scale)
    d, dv = _head_dims(spec, head_dim, head_dim_v)
    spec["shape"] = {"batch": None, "heads": None, "seq": None, "head_dim": d, "head_dim_v": dv}
    if feature_map not in FEATURE_MAPS:
        _fail(f"feature_map: expected one of {', '.join(FEATURE_MAPS)}, got {feature_map!r}")
    if not isinstance(normalize, bool):
        _fail(f"normalize: expected a bool, got {normalize!r}")
    if normalize and (initial_state or final_state):
        _fail("normalize=True cannot be combined with initial_state or return_final_state: "
              "the normalizer is not part of the carried state")
    spec["feature_map"] = feature_map
    spec["normalize"] = normalize
    _state(spec, initial_state, final_state)
    return _named(spec)


GATES = {1: "head_constant", 3: "scalar", 4: "vector"}


def gated_linear_attention_spec(*, dtype, head_dim, head_dim_v=None, layout="bhsd", gate,
                                scale=None, initial_state=False, final_state=False):
    """The spec of a gated linear attention call (gate: scalar, vector or head_constant)."""
    spec = _common("gated_linear_attention", dtype, layout, scale)
    d, dv = _head_dims(spec, head_dim, head_dim_v)
    spec["shape"] = {"batch": None, "heads": None, "seq": None, "head_dim": d, "head_dim_v": dv}
    if gate not in GATES.values():
        _fail(f"gate: expected one of scalar, vector, head_constant, got {gate!r}")
    spec["gate"] = gate
    _state(spec, initial_state, final_state)
    return _named(spec)


def spec_for(config):
    """A spec from a configuration dict {"op": ..., **keyword arguments of the builder}."""
    config = dict(config)
    op = config.pop("op", "attention")
    config.pop("id", None)
    builders = {"attention": attention_spec, "linear_attention": linear_attention_spec,
                "gated_linear_attention": gated_linear_attention_spec}
    if op not in builders:
        _fail(f"op: expected one of {', '.join(builders)}, got {op!r}")
    return builders[op](**config)


# --------------------------------------------------------------------------
# Layouts. A kernel's spec fixes the memory order of Q, K, V, the output and
# the gates: dense [B, H, S, D] ("bhsd") or dense [B, S, H, D] ("bshd"); the
# runtime refuses other strides (dimensions of extent 1 aside), as the
# compiled code folds some of them to constants. Other tensors are row-major.

def layout_strides(shape, layout):
    """The element strides of a dense logical [B, H, S, D] (or [B, H, S]) tensor in `layout`."""
    if layout == "bhsd" or len(shape) < 3:
        stride, acc = [], 1
        for n in reversed(shape):
            stride.insert(0, acc)
            acc *= n
        return tuple(stride)
    B, H, S_ = shape[:3]
    if len(shape) == 3:
        return (S_ * H, 1, H)
    D = shape[3]
    return (S_ * H * D, D, H * D, 1)


def fits_layout(shape, stride, layout):
    """Whether a tensor can be passed to a `layout` kernel as it is."""
    if len(shape) != len(stride):
        return False
    want = layout_strides(shape, layout)
    return all(n == 1 or st == w for n, st, w in zip(shape, stride, want))


def choose_layout(*tensors):
    """The layout for [B, H, S, D] tensors given as (shape, stride) pairs, the first
    being the query: the one every tensor fits (the query's memory order when
    every tensor fits both), else the one most fit, else the query's order.
    The query's order is bshd when stride(H) < stride(S), else bhsd. Tensors that
    do not fit are copied into the layout chosen (attn/ops.py), unless the kernel
    reads them only through TMA maps and a map describes them (tma_readable)."""
    fit = {lay: [fits_layout(s, st, lay) for s, st in tensors] for lay in LAYOUTS}
    shape, stride = tensors[0]
    order = "bshd" if len(stride) == 4 and stride[1] < stride[2] else "bhsd"
    every = [lay for lay in LAYOUTS if all(fit[lay])]
    if len(every) == 1:
        return every[0]
    if every:
        return order
    score = {lay: (sum(fit[lay]), fit[lay][0]) for lay in LAYOUTS}
    if score["bshd"] != score["bhsd"]:
        return "bshd" if score["bshd"] > score["bhsd"] else "bhsd"
    return order


def aligned(data_ptr, shape, stride, itemsize):
    """Whether every row (the last dimension) starts on a 16-byte boundary, as the
    kernels' 16-byte loads and stores need."""
    if data_ptr % ROW_ALIGN:
        return False
    return all(n == 1 or st * itemsize % ROW_ALIGN == 0
               for n, st in zip(shape[:-1], stride[:-1]))


def tma_readable(data_ptr, shape, stride, itemsize):
    """Whether a TMA tensor map can describe a [B, H, S, D] tensor as it is (what
    the runtime checks before encoding one): unit last stride, 16-byte aligned
    data, and the other strides of extents above 1 positive multiples of 16
    bytes below 2^40."""
    if len(shape) != 4 or len(stride) != 4 or stride[3] != 1:
        return False
    # aligned() is the 16-byte part; a map also needs the steps positive and bounded.
    return aligned(data_ptr, shape, stride, itemsize) and \
        all(n == 1 or 0 < st * itemsize < 2 ** 40 for n, st in zip(shape[:3], stride[:3]))


# --------------------------------------------------------------------------
# Argument checks.

def _shape(t):
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def check_device(named):
    """Every tensor on the same CUDA device (meta/fake tensors pass)."""
    device = None
    for name, t in named:
        if t is None:
            continue
        dev = str(t.device)
        kind = dev.split(":")[0]
        if kind not in ("cuda", "meta"):
            _fail(f"{name}: expected a CUDA tensor, got a tensor on {dev}; attn kernels run "
                  "on the GPU (move the inputs with .cuda())")
        if kind == "cuda" and dev not in ("cuda", "cuda:0"):
            _fail(f"{name}: is on {dev}; the attn runtime launches on device 0 only "
                  "(select the GPU with CUDA_VISIBLE_DEVICES)")
        if device is None:
            device = (name, dev)
        elif dev != device[1] and "meta" not in (dev, device[1]):
            _fail(f"{name}: is on {dev} but {device[0]} is on {device[1]}")


def _check_qkv(q, k, v, same_heads):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if len(t.shape) != 4:
            _fail(f"{name}: expected a 4-D tensor [B, H, S, D], got shape {_shape(t)}")
        dt = str(t.dtype).split(".")[-1]
        if dt not in SPEC_DTYPES:
            _fail(f"{name}: dtype {dt} is not supported; expected float16, bfloat16 or float32")
        if t.stride[3] != 1:
            _fail(f"{name}: the last dimension must be contiguous (stride 1), got strides "
                  f"{tuple(t.stride)}; pass a view with a unit last stride or call .contiguous()")
    if not (q.dtype == k.dtype == v.dtype):
        _fail(f"q, k, v must have the same dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    B, Hq, Sq, D = q.shape
    if k.shape[0] != B or v.shape[0] != B:
        _fail(f"batch sizes differ: q {_shape(q)}, k {_shape(k)}, v {_shape(v)}")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2]:
        _fail(f"k and v must agree in heads and length: k {_shape(k)}, v {_shape(v)}")
    if k.shape[3] != D:
        _fail(f"q and k must have the same head dimension: q {_shape(q)}, k {_shape(k)}")
    if same_heads:
        if k.shape[1] != Hq or k.shape[2] != Sq:
            _fail(f"q, k, v must have the same heads and length: q {_shape(q)}, k {_shape(k)}")
    else:
        Hkv = k.shape[1]
        if Hkv < 1 or Hq % Hkv != 0:
            _fail(f"query heads ({Hq}) must be a multiple of key/value heads ({Hkv}) "
                  f"(grouped-query attention): q {_shape(q)}, k {_shape(k)}")


def _expect(name, t, dtypes, shape, what):
    if t is None:
        return
    dt = str(t.dtype).split(".")[-1]
    if dt not in dtypes:
        _fail(f"{name}: expected {what} ({' or '.join(dtypes)}), got {dt}")
    ok = len(t.shape) == len(shape) and all(e is None or e == s for e, s in zip(shape, t.shape))
    if not ok:
        exp = "[" + ", ".join("*" if e is None else str(e) for e in shape) + "]"
        _fail(f"{name}: expected shape {exp}, got {_shape(t)}")


FLOATS = ("float32", "float16", "bfloat16", "float64")
INTS = ("int32", "int64", "int16", "int8", "uint8")


def check_attention(q, k, v, *, block_mask=None, block_size=None, q_doc_ids=None,
                    kv_doc_ids=None, alibi_slopes=None, tensors=None):
    """Checks the tensors of an attention call (TensorInfo each; tensors: {name: info}).
    Returns the spec's alibi kind (None, "per_head", "per_batch_head")."""
    named = [("q", q), ("k", k), ("v", v), ("block_mask", block_mask), ("doc_ids", q_doc_ids),
             ("kv_doc_ids", kv_doc_ids), ("alibi_slopes", alibi_slopes)]
    named += [(f"tensors[{n!r}]", t) for n, t in sorted((tensors or {}).items())]
    _check_qkv(q, k, v, same_heads=False)
    check_device(named)
    B, Hq, Sq, _ = q.shape
    Sk = k.shape[2]
    if block_mask is not None:
        bq, bk = normalize_block_size(block_size)
        nq, nk = -(-Sq // bq), -(-Sk // bk)
        _expect("block_mask", block_mask, ("uint8", "bool", "int8"), [None, None, nq, nk],
                "a bool or uint8 tensor")
        if block_mask.shape[0] not in (1, B) or block_mask.shape[1] not in (1, Hq):
            _fail(f"block_mask: expected shape [{B} or 1, {Hq} or 1, {nq}, {nk}] "
                  f"(blocks of {bq} x {bk}), got {_shape(block_mask)}")
    elif block_size is not None:
        _fail("block_size: given without block_mask")
    if (q_doc_ids is None) != (kv_doc_ids is None):
        _fail("doc_ids: give both query and key document ids, or one tensor for both")
    if q_doc_ids is not None:
        _expect("doc_ids", q_doc_ids, INTS, [B, Sq], "an integer tensor [B, Sq]")
        if kv_doc_ids is q_doc_ids and Sq != Sk:
            _fail(f"doc_ids: one tensor serves queries and keys only when Sq == Sk "
                  f"(got Sq={Sq}, Sk={Sk}); pass doc_ids=(q_doc_ids, kv_doc_ids)")
        _expect("kv_doc_ids", kv_doc_ids, INTS, [B, Sk], "an integer tensor [B, Sk]")
    alibi = None
    if alibi_slopes is not None:
        n = len(alibi_slopes.shape)
        _expect("alibi_slopes", alibi_slopes, FLOATS, [Hq] if n == 1 else [B, Hq],
                "a float tensor [Hq] or [B, Hq]")
        alibi = "per_head" if n == 1 else "per_batch_head"
    for n, t in (tensors or {}).items():
        dt = str(t.dtype).split(".")[-1]
        if dt not in FLOATS + INTS + ("bool",):
            _fail(f"tensors[{n!r}]: expected a float or integer tensor, got {dt}")
        if len(t.shape) < 1:
            _fail(f"tensors[{n!r}]: expected a tensor of rank >= 1, got a scalar")
    return alibi


def tensor_spec_dtype(info):
    """f32 for floating tensors, i32 for integer and bool ones (converted on launch)."""
    return "f32" if str(info.dtype).split(".")[-1] in FLOATS else "i32"


def check_linear(q, k, v, *, g=None, initial_state=None):
    """Checks a (gated) linear attention call. Returns the gate kind (or None)."""
    _check_qkv(q, k, v, same_heads=True)
    check_device([("q", q), ("k", k), ("v", v), ("g", g), ("initial_state", initial_state)])
    B, H, S, D = q.shape
    Dv = v.shape[3]
    gate = None
    if g is not None:
        n = len(g.shape)
        if n not in GATES:
            _fail(f"g: expected gates [H] (head_constant), [B, H, S] (scalar) or "
                  f"[B, H, S, D] (vector), got shape {_shape(g)}")
        gate = GATES[n]
        _expect("g", g, FLOATS, {1: [H], 3: [B, H, S], 4: [B, H, S, D]}[n],
                "float log-space gates")
    if initial_state is not None:
        _expect("initial_state", initial_state, FLOATS, [B, H, D, Dv],
                "a float tensor [B, H, Dqk, Dv]")
    return gate
