"""The PyTorch binding without a GPU.

Always (no torch): spec building and kernel names (attn.spec), argument checks
on tensor descriptions, kernel lookup / disk cache / compile-on-first-use
(attn.kernels, with build/bin/attn-compile and libattn_runtime.so), the
prebuild script.

With torch (skipped otherwise): the torch.library registration, the fake
implementations (FakeTensorMode, torch.compile(fullgraph=True) on meta tensors,
dynamic shapes), error messages of the Python API, every GPU test case
(test/gpu/test_torch_ops.py) resolving to a prebuilt kernel and passing the
runtime's argument checks, and, with the launch replaced by a torch
emulation on the CPU, eager / torch.compile / opcheck end to end.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import attn  # noqa: E402
from attn import kernels as K  # noqa: E402
from attn import prebuild as P  # noqa: E402
from attn import spec as S  # noqa: E402
from attn.spec import AttnArgumentError, TensorInfo  # noqa: E402

COMPILER = os.path.join(ROOT, "build", "bin", "attn-compile")
HAVE_COMPILER = os.path.isfile(COMPILER)
needs_compiler = pytest.mark.skipif(not HAVE_COMPILER, reason="build/bin/attn-compile not built")

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(
    torch is None, reason="PyTorch is not installed (pip install torch): the registration, "
                          "fake-implementation and torch.compile tests need it")


def info(shape, dtype="bfloat16", device="cuda:0", stride=None, layout="bhsd"):
    """A TensorInfo with contiguous strides in `layout` (for [B, H, S, D] shapes)."""
    if stride is None:
        if layout == "bshd" and len(shape) == 4:
            B, H, S_, D = shape
            stride = (S_ * H * D, D, H * D, 1)
        else:
            stride, acc = [], 1
            for n in reversed(shape):
                stride.insert(0, acc)
                acc *= n
            stride = tuple(stride)
    return TensorInfo(tuple(shape), tuple(stride), dtype, device)


def raises(fn, *args, match, **kwargs):
    with pytest.raises(AttnArgumentError) as e:
        fn(*args, **kwargs)
    assert match in str(e.value), str(e.value)
    return str(e.value)


# ==========================================================================
# Specs and kernel names (no torch)

def test_attention_spec_and_stable_name():
    spec = S.attention_spec(dtype="bfloat16", head_dim=128, causal=True)
    assert spec == {
        "name": spec["name"], "kind": "attention", "dtype": "bf16", "layout": "bhsd",
        "shape": {"batch": None, "heads_q": None, "heads_kv": None, "seq_q": None,
                  "seq_k": None, "head_dim": 128, "head_dim_v": 128},
        "mask": {"causal": True}, "outputs": {"lse": True}}
    # The name is part of the kernel ABI of every AOT directory: pinned.
    assert spec["name"] == "attn_6c6b80af795b9cfb"
    assert S.kernel_name(spec) == spec["name"]
    assert S.canonical_json(spec).startswith('{"dtype":"bf16","kind":"attention"')
    # torch dtype names and spec names are the same thing.
    assert S.attention_spec(dtype="bf16", head_dim=128, causal=True) == spec
    assert S.attention_spec(dtype="torch.bfloat16", head_dim=128, causal=True) == spec


def test_names_differ_for_every_option():
    base = dict(dtype="bf16", head_dim=64)
    variants = [{}, {"causal": True}, {"window": 8}, {"window": (8, 2)}, {"block_size": 64},
                {"documents": True}, {"alibi": "per_head"}, {"alibi": "per_batch_head"},
                {"softcap": 30}, {"score_mod": "score * 2.0"}, {"mask_mod": "q >= k"},
                {"scale": 0.5}, {"layout": "bshd"}, {"head_dim_v": 128}, {"dtype": "f16"},
                {"head_dim": 128}]
    names = {S.attention_spec(**{**base, **v})["name"] for v in variants}
    assert len(names) == len(variants)
    lin = S.linear_attention_spec(dtype="bf16", head_dim=64)
    gla = S.gated_linear_attention_spec(dtype="bf16", head_dim=64, gate="scalar")
    assert lin["name"].startswith("lin_") and gla["name"].startswith("gla_")
    assert S.attention_spec(**base)["name"].startswith("attn_")


def test_spec_values():
    spec = S.attention_spec(dtype="f16", head_dim=64, head_dim_v=32, layout="bshd", causal=True,
                            window=(16, 0), block_size=(32, 64), documents=True,
                            alibi="per_batch_head", softcap=20, score_mod="score + bias[h, k]",
                            mask_mod="ids[b, q] == ids[b, k]", scale=0.25,
                            tensors={"ids": ("i32", 2), "bias": ("f32", 2)})
    assert spec["layout"] == "bshd" and spec["scale"] == 0.25
    assert spec["mask"] == {"causal": True, "window": {"left": 16, "right": 0},
                            "block_sparse": {"block_q": 32, "block_k": 64}, "documents": True,
                            "custom": "ids[b, q] == ids[b, k]"}
    assert spec["score"] == {"softcap": 20.0, "alibi": "per_batch_head",
                             "custom": "score + bias[h, k]"}
    # Tensors are declared (and passed) in name order, so the canonical JSON
    # (sorted keys) describes the argument order too.
    assert list(spec["tensors"]) == ["bias", "ids"]
    assert spec["tensors"]["ids"] == {"dtype": "i32", "shape": [None, None]}
    assert S.normalize_window(5) == (5, 0)
    assert S.normalize_window([3, 4]) == (3, 4)
    assert S.normalize_block_size(None) == (128, 128)
    assert S.normalize_block_size(64) == (64, 64)


def test_linear_specs():
    spec = S.linear_attention_spec(dtype="f32", head_dim=32, feature_map="elu_plus_one",
                                   initial_state=True)
    assert spec["shape"] == {"batch": None, "heads": None, "seq": None, "head_dim": 32,
                             "head_dim_v": 32}
    assert spec["feature_map"] == "elu_plus_one" and spec["normalize"] is False
    assert spec["state"] == {"initial": True, "final": False}
    gla = S.gated_linear_attention_spec(dtype="bf16", head_dim=64, gate="vector",
                                        final_state=True)
    assert gla["gate"] == "vector" and gla["state"] == {"initial": False, "final": True}
    assert "state" not in S.linear_attention_spec(dtype="f32", head_dim=32)


@pytest.mark.parametrize("kwargs,match", [
    ({"dtype": "float64"}, "dtype float64 is not supported; expected float16, bfloat16 or float32"),
    ({"head_dim": 4}, "head_dim 4: rows of bf16 must be a multiple of 16 bytes (head dims a multiple of 8)"),
    ({"head_dim_v": 12}, "head_dim_v 12"),
    ({"head_dim": 0}, "head_dim: expected an integer in [1, 2147483647], got 0"),
    ({"window": -1}, "window: expected an integer in [0, 2147483647], got -1"),
    ({"window": (4, None)}, "window: both bounds must be integers >= 0"),
    ({"window": "left"}, "window: expected None, an integer or a pair (left, right)"),
    ({"block_size": 0}, "block_size: expected an integer in [1, 2147483647], got 0"),
    ({"softcap": 0}, "softcap: expected a positive finite number, got 0.0"),
    ({"softcap": float("inf")}, "softcap: expected a positive finite number"),
    ({"softcap": "50"}, "softcap: expected a positive number, got '50'"),
    ({"scale": -1.0}, "scale: expected a positive finite number, got -1.0"),
    ({"scale": True}, "scale: expected a positive number, got True"),
    ({"alibi": "per_token"}, "alibi: expected 'per_head' or 'per_batch_head'"),
    ({"score_mod": lambda s, b, h, q, k: s}, "score_mod: expected an expression string in the "
     "spec syntax (docs/spec-format.md), e.g. 'score + bias[h, k]'; Python callables"),
    ({"mask_mod": lambda b, h, q, k: q >= k}, "mask_mod: expected an expression string"),
    ({"mask_mod": "  "}, "mask_mod: expected a non-empty expression string"),
    ({"causal": 1}, "causal: expected a bool, got 1"),
    ({"layout": "sbhd"}, "layout: expected one of bhsd, bshd, got 'sbhd'"),
    ({"tensors": {"bias": ("f32", 2)}}, "tensors: given, but there is no score_mod or mask_mod"),
    ({"tensors": {"bias": ("f32", 2)}, "score_mod": "score * 2.0"},
     "tensors['bias']: declared but read by neither score_mod nor mask_mod"),
    ({"tensors": {"biased": ("f32", 2)}, "score_mod": "score + bias[h, k]"},
     "tensors['biased']: declared but read"),
    ({"tensors": {"exp": ("f32", 1)}, "score_mod": "score + exp[k]"},
     "tensors: 'exp' is a reserved name of the expression language"),
    ({"tensors": {"my-bias": ("f32", 1)}, "score_mod": "score"}, "is not an identifier"),
    ({"tensors": {"bias": ("f64", 1)}, "score_mod": "score + bias[k]"},
     "tensors['bias']: expected a float32 or int32 tensor, got f64"),
])
def test_attention_spec_errors(kwargs, match):
    raises(S.attention_spec, match=match, **{"dtype": "bf16", "head_dim": 64, **kwargs})


def test_linear_spec_errors():
    raises(S.linear_attention_spec, dtype="bf16", head_dim=64, normalize=True,
           final_state=True, match="normalize=True cannot be combined with initial_state or "
                                   "return_final_state")
    raises(S.linear_attention_spec, dtype="bf16", head_dim=64, feature_map="elu",
           match="feature_map: expected one of identity, elu_plus_one, relu, got 'elu'")
    raises(S.gated_linear_attention_spec, dtype="bf16", head_dim=64, gate="matrix",
           match="gate: expected one of scalar, vector, head_constant")
    raises(S.spec_for, {"op": "mamba"}, match="op: expected one of attention")


def test_f32_head_dims_need_only_multiples_of_four():
    assert S.attention_spec(dtype="f32", head_dim=4)["shape"]["head_dim"] == 4
    raises(S.attention_spec, dtype="f16", head_dim=4, match="multiple of 8")


# ==========================================================================
# Layouts (no torch)

def test_layout_choice():
    bhsd = ((2, 4, 100, 64), (4 * 100 * 64, 100 * 64, 64, 1))
    bshd = ((2, 4, 100, 64), (100 * 4 * 64, 64, 4 * 64, 1))
    assert S.choose_layout(bhsd, bhsd, bhsd) == "bhsd"
    assert S.choose_layout(bshd, bshd, bshd) == "bshd"
    # Views of a packed [B, S, 3, H, D] projection (stride(S) = 3*H*D) fit no dense
    # layout: they are copied into the query's order.
    packed = ((2, 4, 100, 64), (100 * 3 * 4 * 64, 64, 3 * 4 * 64, 1))
    assert not S.fits_layout(*packed, "bshd")
    assert S.choose_layout(packed, packed, packed) == "bshd"
    assert S.layout_strides((2, 4, 100), "bshd") == (400, 1, 4)  # scalar gates
    # Decoding: one query row fits both layouts; the [B, S, H, D] cache decides.
    q1 = ((2, 4, 1, 64), (4 * 64, 64, 4 * 64, 1))
    assert S.choose_layout(q1, bshd, bshd) == "bshd"
    assert S.choose_layout(q1, bhsd, bhsd) == "bhsd"
    # Every tensor fits both (one query row, one key/value head): the query's order.
    kv1 = ((2, 1, 100, 64), (100 * 64, 64, 64, 1))
    assert S.choose_layout(q1, kv1, kv1) == "bshd"
    assert S.choose_layout(((2, 4, 1, 64), (256, 64, 64, 1)), kv1, kv1) == "bhsd"
    # Mixed: the layout most tensors fit (the others are copied).
    assert S.choose_layout(bshd, bshd, bhsd) == "bshd"
    assert S.choose_layout(bhsd, bshd, bhsd) == "bhsd"
    # Rows that are not contiguous fit no layout.
    wide = ((2, 4, 100, 64), (4 * 100 * 128, 100 * 128, 128, 1))
    assert not S.fits_layout(*wide, "bhsd") and not S.fits_layout(*wide, "bshd")
    assert not S.fits_layout((2, 4, 100, 64), (1, 1, 1, 2), "bhsd")


def test_alignment():
    assert S.aligned(1024, (2, 4, 100, 64), (25600, 6400, 64, 1), 2)
    assert not S.aligned(1026, (2, 4, 100, 64), (25600, 6400, 64, 1), 2)
    assert not S.aligned(1024, (2, 4, 100, 64), (25601, 6400, 64, 1), 2)
    assert S.aligned(1024, (1, 4, 100, 64), (3, 6400, 64, 1), 2)  # size-1 dims: any stride


# ==========================================================================
# Argument checks on tensor descriptions (no torch)

Q = info((2, 8, 100, 64))
KV = info((2, 2, 130, 64))


def test_valid_attention_arguments():
    assert S.check_attention(Q, KV, KV) is None
    assert S.check_attention(Q, KV, KV, alibi_slopes=info((8,), "float32")) == "per_head"
    assert S.check_attention(Q, KV, KV, alibi_slopes=info((2, 8), "float32")) == "per_batch_head"
    S.check_attention(Q, KV, KV, block_mask=info((1, 8, 1, 2), "bool"), block_size=(128, 128))
    S.check_attention(Q, KV, KV, q_doc_ids=info((2, 100), "int64"),
                      kv_doc_ids=info((2, 130), "int32"))
    S.check_attention(Q, KV, info((2, 2, 130, 32)))  # Dv != Dqk
    meta = info((2, 8, 100, 64), device="meta")
    S.check_attention(meta, meta, meta)  # fake / meta tensors pass the device check


@pytest.mark.parametrize("args,kwargs,match", [
    ((info((2, 8, 100, 64), device="cpu"), KV, KV), {},
     "q: expected a CUDA tensor, got a tensor on cpu; attn kernels run on the GPU"),
    ((Q, info((2, 2, 130, 64), device="cpu"), KV), {}, "k: expected a CUDA tensor"),
    ((info((2, 8, 100, 64), device="cuda:1"), KV, KV), {},
     "q: is on cuda:1; the attn runtime launches on device 0 only"),
    ((info((2, 8, 100, 64), "float64"), KV, KV), {},
     "q: dtype float64 is not supported; expected float16, bfloat16 or float32"),
    ((info((2, 8, 100, 64), "float16"), KV, KV), {},
     "q, k, v must have the same dtype, got float16, bfloat16, bfloat16"),
    ((info((8, 100, 64)), KV, KV), {}, "q: expected a 4-D tensor [B, H, S, D], got shape [8, 100, 64]"),
    ((Q, info((3, 2, 130, 64)), KV), {}, "batch sizes differ"),
    ((Q, KV, info((2, 2, 131, 64))), {}, "k and v must agree in heads and length"),
    ((Q, info((2, 2, 130, 32)), KV), {}, "q and k must have the same head dimension"),
    ((Q, info((2, 3, 130, 64)), info((2, 3, 130, 64))), {},
     "query heads (8) must be a multiple of key/value heads (3)"),
    ((info((2, 8, 100, 64), stride=(51200, 6400, 64, 2)), KV, KV), {},
     "q: the last dimension must be contiguous (stride 1), got strides (51200, 6400, 64, 2)"),
    ((Q, KV, KV), {"block_mask": info((1, 8, 1, 2), "float32")},
     "block_mask: expected a bool or uint8 tensor (uint8 or bool or int8), got float32"),
    ((Q, KV, KV), {"block_mask": info((1, 8, 2, 2), "bool")},
     "block_mask: expected shape [*, *, 1, 2], got [1, 8, 2, 2]"),
    ((Q, KV, KV), {"block_mask": info((1, 4, 1, 2), "bool")},
     "block_mask: expected shape [2 or 1, 8 or 1, 1, 2] (blocks of 128 x 128)"),
    ((Q, KV, KV), {"block_size": 64}, "block_size: given without block_mask"),
    ((Q, KV, KV), {"q_doc_ids": info((2, 100), "int32")}, "give both query and key document ids"),
    ((Q, KV, KV), {"q_doc_ids": info((2, 99), "int32"), "kv_doc_ids": info((2, 130), "int32")},
     "doc_ids: expected shape [2, 100], got [2, 99]"),
    ((Q, KV, KV), {"q_doc_ids": info((2, 100), "float32"), "kv_doc_ids": info((2, 130), "int32")},
     "doc_ids: expected an integer tensor [B, Sq]"),
    ((Q, KV, KV), {"alibi_slopes": info((4,), "float32")}, "alibi_slopes: expected shape [8], got [4]"),
    ((Q, KV, KV), {"alibi_slopes": info((8,), "int32")}, "alibi_slopes: expected a float tensor"),
    ((Q, KV, KV), {"tensors": {"bias": info((8, 130), "complex64")}},
     "tensors['bias']: expected a float or integer tensor, got complex64"),
    ((Q, KV, KV), {"tensors": {"bias": info((), "float32")}}, "tensors['bias']: expected a tensor of rank >= 1"),
])
def test_attention_argument_errors(args, kwargs, match):
    raises(S.check_attention, *args, match=match, **kwargs)


def test_one_doc_ids_tensor_needs_equal_lengths():
    ids = info((2, 100), "int32")
    raises(S.check_attention, Q, KV, KV, q_doc_ids=ids, kv_doc_ids=ids,
           match="doc_ids: one tensor serves queries and keys only when Sq == Sk")


def test_linear_argument_checks():
    x = info((2, 4, 100, 64))
    assert S.check_linear(x, x, x) is None
    assert S.check_linear(x, x, x, g=info((4,), "float32")) == "head_constant"
    assert S.check_linear(x, x, x, g=info((2, 4, 100), "float32")) == "scalar"
    assert S.check_linear(x, x, x, g=info((2, 4, 100, 64), "float32")) == "vector"
    raises(S.check_linear, x, info((2, 2, 100, 64)), info((2, 2, 100, 64)),
           match="q, k, v must have the same heads and length")
    raises(S.check_linear, x, x, x, g=info((2, 4), "float32"),
           match="g: expected gates [H] (head_constant), [B, H, S] (scalar) or [B, H, S, D]")
    raises(S.check_linear, x, x, x, g=info((2, 4, 99), "float32"),
           match="g: expected shape [2, 4, 100], got [2, 4, 99]")
    raises(S.check_linear, x, x, x, initial_state=info((2, 4, 64, 32), "float32"),
           match="initial_state: expected shape [2, 4, 64, 64]")
    raises(S.check_linear, info((2, 4, 100, 64), device="cpu"), x, x, match="q: expected a CUDA tensor")


def test_attention_without_torch_is_a_clear_import_error():
    if torch is not None:
        pytest.skip("torch is installed")
    with pytest.raises(ImportError, match="attn.attention needs PyTorch"):
        attn.attention  # noqa: B018


# ==========================================================================
# Kernel lookup, disk cache, compile on first use, prebuild (no torch)

@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory):
    """The GPU tests' kernels, prebuilt as scripts/gpu/prepare.sh does."""
    if not HAVE_COMPILER:
        pytest.skip("build/bin/attn-compile not built")
    out = tmp_path_factory.mktemp("prebuilt") / "sm_90a"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "python", "attn", "prebuild.py"),
                        "--set", "gpu-tests", "-o", str(out), "--chip", "sm_90a",
                        "--compiler", COMPILER],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(out)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No kernel directories, a private cache, no loaded kernels."""
    monkeypatch.delenv("ATTN_KERNEL_PATH", raising=False)
    monkeypatch.delenv("ATTN_COMPILE", raising=False)
    monkeypatch.delenv("ATTN_CHIP", raising=False)
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(K, "_added_dirs", [])
    K.clear_memory_cache()
    for key in K.stats:
        K.stats[key] = 0
    yield tmp_path
    K.clear_memory_cache()


def test_prebuild_writes_every_gpu_test_kernel(prebuilt):
    with open(os.path.join(prebuilt, "prebuild.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
    names = {S.spec_for(c)["name"] for c in P.GPU_TEST_CONFIGS}
    assert {r["name"] for r in rows} == names
    for name in names:
        with open(os.path.join(prebuilt, name + ".json")) as f:
            manifest = json.load(f)
        assert manifest["name"] == name and manifest["chip"] == "sm_90a" and manifest["cubin"]
    specs = {S.spec_for(c)["name"]: S.spec_for(c) for c in P.GPU_TEST_CONFIGS}
    for name, spec in specs.items():
        with open(os.path.join(prebuilt, name + ".json")) as f:
            assert json.load(f)["spec"] == json.loads(S.canonical_json(spec))
    # Only manifests are *.json (test/gpu/run_gpu_checks.py globs for them): the
    # kernels' and their per-sequence-length variants' (dispatch), no leftovers.
    files = os.listdir(prebuilt)
    manifests = set()
    for name in names:
        manifests.add(name + ".json")
        with open(os.path.join(prebuilt, name + ".json")) as f:
            for variant in json.load(f).get("dispatch", []):
                assert os.path.exists(os.path.join(prebuilt, variant["manifest"]))
                manifests.add(variant["manifest"])
    assert len(manifests) > len(names)  # dense at head dim 64 has a variant
    assert sorted(f for f in files if f.endswith(".json")) == sorted(manifests)
    assert not [f for f in files if f.startswith(".tmp")]


def test_kernel_from_a_kernel_directory(prebuilt, clean_env, monkeypatch):
    monkeypatch.setenv("ATTN_KERNEL_PATH", os.pathsep.join(["/nonexistent", prebuilt]))
    monkeypatch.setenv("ATTN_COMPILE", "0")
    spec = S.spec_for(P.GPU_TEST_CONFIGS[0])
    k = K.get_kernel(spec, "sm_90a", (9, 0))
    assert k.manifest_path == os.path.join(prebuilt, spec["name"] + ".json")
    assert k.cached_roles == ["query", "key", "value", "out", "lse"]
    assert K.get_kernel(spec, "sm_90a", (9, 0)) is k
    assert K.stats["dir_hits"] == 1 and K.stats["memory_hits"] == 1
    # attn.add_kernel_dir puts a directory first.
    attn.add_kernel_dir(prebuilt)
    assert K.kernel_dirs()[0] == prebuilt
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        attn.add_kernel_dir("/nonexistent")


def test_not_found_message(prebuilt, clean_env, monkeypatch):
    monkeypatch.setenv("ATTN_COMPILE", "0")
    spec = S.attention_spec(dtype="bf16", head_dim=64, causal=True, window=(7, 0))
    with pytest.raises(K.KernelNotFoundError) as e:
        K.get_kernel(spec, "sm_90a", (9, 0))
    msg = str(e.value)
    assert f"no kernel {spec['name']} (attention, bf16, layout bhsd) for sm_90a" in msg
    assert "no kernel directories (set ATTN_KERNEL_PATH or call attn.add_kernel_dir)" in msg
    assert "python3 python/attn/prebuild.py --spec-json '" + S.canonical_json(spec) in msg
    # The command in the message builds exactly the missing kernel.
    out = clean_env / "fromhint"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "python", "attn", "prebuild.py"),
                        "--spec-json", S.canonical_json(spec), "-o", str(out),
                        "--compiler", COMPILER], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    monkeypatch.setenv("ATTN_KERNEL_PATH", str(out))
    assert K.get_kernel(spec, "sm_90a", (9, 0)).manifest_path.startswith(str(out))


def test_kernels_for_other_devices_or_specs_are_passed_over(prebuilt, clean_env, monkeypatch):
    monkeypatch.setenv("ATTN_COMPILE", "0")
    spec = S.spec_for(P.GPU_TEST_CONFIGS[0])
    monkeypatch.setenv("ATTN_KERNEL_PATH", prebuilt)
    with pytest.raises(K.KernelNotFoundError) as e:
        K.get_kernel(spec, "sm_80", (8, 6))  # an sm_90a cubin on an sm_86 device
    assert "compiled for sm_90a (cubin), which does not run on compute capability 8.6" in str(e.value)
    # A manifest that was compiled from another spec under this name.
    d = clean_env / "stale"
    d.mkdir()
    other = S.spec_for(P.GPU_TEST_CONFIGS[1])
    for ext in (".json", ".ptx", ".cubin"):
        src = open(os.path.join(prebuilt, other["name"] + ext), "rb").read()
        open(d / (spec["name"] + ext), "wb").write(src)
    monkeypatch.setenv("ATTN_KERNEL_PATH", str(d))
    with pytest.raises(K.KernelNotFoundError, match="compiled from a different spec"):
        K.get_kernel(spec, "sm_90a", (9, 0))


def test_chip_choice(monkeypatch):
    monkeypatch.delenv("ATTN_CHIP", raising=False)
    assert K.chip_for_capability((9, 0)) == "sm_90a"
    assert K.chip_for_capability((8, 0)) == "sm_80"
    assert K.chip_for_capability((8, 9)) == "sm_80"
    assert K.chip_for_capability((10, 0)) == "sm_80"
    with pytest.raises(attn.AttnError, match="compute capability 7.5 is not supported"):
        K.chip_for_capability((7, 5))
    monkeypatch.setenv("ATTN_CHIP", "sm_80")
    assert K.chip_for_capability((9, 0)) == "sm_80"
    assert K._runs_on({"chip": "sm_80", "cubin": None}, (10, 0)) is None
    assert K._runs_on({"chip": "sm_80", "cubin": "x.cubin"}, (10, 0))


@needs_compiler
def test_compile_on_first_use_and_disk_cache(clean_env, monkeypatch):
    monkeypatch.setenv("ATTN_COMPILE", COMPILER)
    spec = S.attention_spec(dtype="f16", head_dim=32, window=(5, 5))
    k = K.get_kernel(spec, "sm_90a", (9, 0))
    assert K.stats["compiles"] == 1
    cache = K.cache_dir("sm_90a", COMPILER)
    assert cache.startswith(str(clean_env / "cache" / "sm_90a-"))
    assert k.manifest_path == os.path.join(cache, spec["name"] + ".json")
    assert sorted(os.listdir(cache)) == sorted(spec["name"] + e for e in (".json", ".ptx", ".cubin"))
    # Another process (here: an empty memory cache) finds it on disk.
    K.clear_memory_cache()
    K.get_kernel(spec, "sm_90a", (9, 0))
    assert K.stats["cache_hits"] == 1 and K.stats["compiles"] == 1
    # A truncated entry is detected and rebuilt.
    K.clear_memory_cache()
    ptx = os.path.join(cache, spec["name"] + ".ptx")
    with open(ptx, "r+") as f:
        f.truncate(100)
    K.get_kernel(spec, "sm_90a", (9, 0))
    assert K.stats["compiles"] == 2
    assert os.path.getsize(ptx) > 100
    # sm_80: PTX only (the driver compiles it for any newer GPU).
    k80 = K.get_kernel(spec, "sm_80", (8, 0))
    with open(k80.manifest_path) as f:
        assert not json.load(f).get("cubin")


@needs_compiler
def test_compile_errors_leave_nothing_behind(clean_env, monkeypatch):
    monkeypatch.setenv("ATTN_COMPILE", COMPILER)
    spec = S.attention_spec(dtype="bf16", head_dim=64, mask_mod="q < foo")
    with pytest.raises(attn.AttnError) as e:
        K.get_kernel(spec, "sm_90a", (9, 0))
    assert "attn-compile failed for kernel " + spec["name"] in str(e.value)
    assert "unknown name 'foo'" in str(e.value)
    cache = K.cache_dir("sm_90a", COMPILER)
    assert os.listdir(cache) == []
    # An unwritable cache directory is an error, not a crash.
    blocker = clean_env / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ATTN_CACHE_DIR", str(blocker / "sub"))
    good = S.attention_spec(dtype="bf16", head_dim=64)
    with pytest.raises(attn.AttnError, match="cannot write the kernel cache directory"):
        K.get_kernel(good, "sm_90a", (9, 0))


@needs_compiler
def test_prebuild_records_failures(clean_env):
    cfg = clean_env / "configs.json"
    cfg.write_text(json.dumps([
        {"id": "good", "op": "attention", "dtype": "bf16", "head_dim": 64},
        {"id": "bad", "op": "attention", "dtype": "bf16", "head_dim": 64, "mask_mod": "q <"}]))
    out = clean_env / "out"
    cmd = [sys.executable, os.path.join(ROOT, "python", "attn", "prebuild.py"), "--configs",
           str(cfg), "-o", str(out), "--compiler", COMPILER]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "prebuilt 1/2 kernels" in r.stdout
    report = [json.loads(line) for line in open(out / "prebuild.jsonl")]
    bad = [row for row in report if row["configs"] == ["bad"]][0]
    assert not bad["ok"] and "mask.custom" in bad["error"]
    assert subprocess.run(cmd + ["--allow-failures"], capture_output=True).returncode == 0


# ==========================================================================
# With torch: registration and fake implementations

@needs_torch
def test_ops_are_registered_and_functional():
    import attn.ops  # noqa: F401
    for name in ("attention", "linear_attention", "gated_linear_attention"):
        schema = getattr(torch.ops.attn, name).default._schema
        assert not any(a.alias_info for a in schema.arguments), schema  # nothing mutated
        assert not any(r.alias_info for r in schema.returns), schema  # new tensors
    assert str(torch.ops.attn.attention.default._schema).startswith(
        "attn::attention(Tensor q, Tensor k, Tensor v, Tensor? block_mask")


@needs_torch
def test_fake_outputs():
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        q = torch.empty(2, 8, 100, 64, dtype=torch.bfloat16, device="cuda")
        k = torch.empty(2, 2, 130, 64, dtype=torch.bfloat16, device="cuda")
        v = torch.empty(2, 2, 130, 32, dtype=torch.bfloat16, device="cuda")
        out, lse = attn.attention(q, k, v, causal=True, return_lse=True)
        assert out.shape == (2, 8, 100, 32) and out.dtype == torch.bfloat16
        assert out.is_contiguous() and out.device == q.device
        assert lse.shape == (2, 8, 100) and lse.dtype == torch.float32
        # [B, S, H, D] views in, [B, S, H, D] memory out.
        qb = torch.empty(2, 100, 8, 64, dtype=torch.float16, device="cuda").transpose(1, 2)
        kb = torch.empty(2, 130, 2, 64, dtype=torch.float16, device="cuda").transpose(1, 2)
        ob = attn.attention(qb, kb, kb, window=16)
        assert ob.shape == (2, 8, 100, 64) and ob.transpose(1, 2).is_contiguous()
        x = torch.empty(2, 4, 50, 32, dtype=torch.float32, device="cuda")
        o = attn.linear_attention(x, x, x, feature_map="relu")
        assert o.shape == (2, 4, 50, 32) and o.dtype == torch.float32
        o, ht = attn.gated_linear_attention(x, x, x, torch.empty(4, device="cuda"),
                                            return_final_state=True)
        assert ht.shape == (2, 4, 32, 32) and ht.dtype == torch.float32
        _, none = torch.ops.attn.linear_attention(x, x, x, None, "identity", False, None, False,
                                                  "bhsd")
        assert none.shape == (0,)


def _block(q, k, v, bias, slopes):
    o = attn.attention(q, k, v, causal=True, window=(64, 0), softcap=30.0,
                       score_mod="score + bias[h, k]", tensors={"bias": bias},
                       alibi_slopes=slopes)
    return o.float().sum(dim=-1)


@needs_torch
@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_traces_without_graph_breaks(dynamic):
    torch._dynamo.reset()
    q = torch.empty(2, 8, 100, 64, dtype=torch.bfloat16, device="meta")
    k = torch.empty(2, 2, 130, 64, dtype=torch.bfloat16, device="meta")
    bias, slopes = torch.empty(8, 130, device="meta"), torch.empty(8, device="meta")
    f = torch.compile(_block, fullgraph=True, backend="aot_eager", dynamic=dynamic)
    assert f(q, k, k, bias, slopes).shape == (2, 8, 100)
    q2 = torch.empty(3, 8, 77, 64, dtype=torch.bfloat16, device="meta")
    k2 = torch.empty(3, 2, 99, 64, dtype=torch.bfloat16, device="meta")
    assert f(q2, k2, k2, torch.empty(8, 99, device="meta"), slopes).shape == (3, 8, 77)
    explained = torch._dynamo.explain(_block)(q, k, k, bias, slopes)
    assert explained.graph_break_count == 0 and explained.graph_count == 1

    def linear(x, g, h0):
        a = attn.linear_attention(x, x, x, feature_map="elu_plus_one", normalize=True)
        b, ht = attn.gated_linear_attention(x, x, x, g, initial_state=h0, return_final_state=True)
        return a + b, ht

    x = torch.empty(2, 4, 50, 32, device="meta")
    out, ht = torch.compile(linear, fullgraph=True, backend="aot_eager", dynamic=dynamic)(
        x, torch.empty(2, 4, 50, 32, device="meta"), torch.empty(2, 4, 32, 32, device="meta"))
    assert out.shape == (2, 4, 50, 32) and ht.shape == (2, 4, 32, 32)


@needs_torch
def test_compile_reports_bad_arguments_at_trace_time():
    torch._dynamo.reset()
    q = torch.empty(2, 8, 100, 64, dtype=torch.bfloat16, device="meta")
    k = torch.empty(2, 3, 130, 64, dtype=torch.bfloat16, device="meta")
    f = torch.compile(lambda q, k: attn.attention(q, k, k), fullgraph=True, backend="aot_eager")
    with pytest.raises(Exception, match=r"query heads \(8\) must be a multiple of key/value heads \(3\)"):
        f(q, k)


# ==========================================================================
# With torch: the Python API's error messages

@needs_torch
def test_api_errors():
    cpu = torch.randn(2, 4, 10, 64, dtype=torch.bfloat16)
    m = torch.empty(2, 4, 10, 64, dtype=torch.bfloat16, device="meta")
    with pytest.raises(AttnArgumentError, match="q: expected a CUDA tensor, got a tensor on cpu"):
        attn.attention(cpu, cpu, cpu)
    with pytest.raises(AttnArgumentError, match="q: expected a CUDA tensor"):
        attn.linear_attention(cpu, cpu, cpu)
    with pytest.raises(AttnArgumentError, match="q: expected a torch.Tensor, got ndarray"):
        import numpy as np
        attn.attention(np.zeros((2, 4, 10, 64)), m, m)
    with pytest.raises(AttnArgumentError, match="q: the last dimension must be contiguous"):
        attn.attention(torch.empty(2, 4, 10, 128, dtype=torch.bfloat16, device="meta")[..., ::2], m, m)
    with pytest.raises(AttnArgumentError, match="Python callables"):
        attn.attention(m, m, m, score_mod=lambda s, b, h, q, k: s)
    with pytest.raises(AttnArgumentError, match="block_mask: expected a bool or uint8 tensor"):
        attn.attention(m, m, m, block_mask=object())
    with pytest.raises(AttnArgumentError, match="block_size: given without block_mask"):
        attn.attention(m, m, m, block_size=64)
    with pytest.raises(AttnArgumentError, match="window: expected an integer in"):
        attn.attention(m, m, m, window=-3)
    k = torch.empty(2, 4, 12, 64, dtype=torch.bfloat16, device="meta")
    ids = torch.empty(2, 10, dtype=torch.int32, device="meta")
    with pytest.raises(AttnArgumentError, match="doc_ids: one tensor serves queries and keys only when Sq == Sk"):
        attn.attention(m, k, k, doc_ids=ids)
    with pytest.raises(AttnArgumentError, match="normalize=True cannot be combined"):
        attn.linear_attention(m, m, m, normalize=True, return_final_state=True)
    with pytest.raises(AttnArgumentError, match="tensors: expected a dict"):
        attn.attention(m, m, m, score_mod="score", tensors=[m])
    with pytest.raises(AttnArgumentError, match=r"tensors\['bias'\]: declared but read by neither"):
        attn.attention(m, m, m, score_mod="score", tensors={"bias": torch.empty(4, device="meta")})


# ==========================================================================
# With torch, without a GPU: every GPU test case resolves to a prebuilt kernel
# and passes the runtime's checks (the device check aside).

def _gpu_tests():
    import importlib.util
    path = os.path.join(ROOT, "test", "gpu", "test_torch_ops.py")
    spec = importlib.util.spec_from_file_location("gpu_test_torch_ops", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def cpu_as_device(monkeypatch, prebuilt, clean_env):
    """Kernels only from `prebuilt`; CPU tensors pass the binding's device check; every
    launch records its arguments before the runtime checks them."""
    monkeypatch.setenv("ATTN_KERNEL_PATH", prebuilt)
    monkeypatch.setenv("ATTN_COMPILE", "0")
    monkeypatch.setenv("ATTN_CHIP", "sm_90a")
    monkeypatch.setattr(S, "check_device", lambda named: None)
    return _gpu_tests()._launched(monkeypatch)  # the GPU tests' launch recorder


def _expect_runtime_device_error(call):
    with pytest.raises(attn.AttnError) as e:
        call()
    assert not isinstance(e.value, K.KernelNotFoundError), str(e.value)
    # Counts, dtypes and shapes passed the runtime's checks; only the memory is not
    # device memory (or there is no driver on this machine).
    assert e.value.status in ("not on device", "CUDA error"), str(e.value)


def _check_layouts(kernel, tensors):
    with open(kernel.manifest_path) as f:
        layout = json.load(f)["spec"].get("layout", "bhsd")
    for role, t in zip(kernel.cached_roles, tensors):
        if role in kernel.cached_any_strides:  # read through a TMA map of its own strides
            assert S.tma_readable(t.data_ptr(), tuple(t.shape), t.stride(), t.element_size()), \
                (role, t.stride())
        elif role in ("query", "key", "value", "out"):
            assert S.fits_layout(tuple(t.shape), t.stride(), layout), (role, t.stride())
            assert S.aligned(t.data_ptr(), tuple(t.shape), t.stride(), t.element_size()), role
        else:
            assert t.stride()[-1] == 1 or t.shape[-1] == 1, role


def _rewritten(q, k, v, kw):
    """Whether attn.attention runs this call rewritten (attn/splitkv.py)."""
    import attn.ops as O
    position_free = not set(kw) - {"causal", "window", "softcap", "scale"}
    return O._decode_plan(q, k, v, position_free, kw.get("causal", False),
                          S.normalize_window(kw.get("window")), None) is not None


@needs_torch
def test_gpu_test_cases_resolve_and_pass_runtime_checks(cpu_as_device):
    gpu = _gpu_tests()
    seen = set()
    for cfg in gpu.ATTENTION:
        for shape in range(len(gpu.SHAPES)):
            B, Sq, Sk = gpu.SHAPES[shape]
            Hq, Hkv = gpu.HEADS[shape]
            (q, k, v), kw, ps, x = gpu.attention_case(cfg, B, Hq, Hkv, Sq, Sk, 1, device="cpu")
            _expect_runtime_device_error(lambda: attn.attention(q, k, v, **kw))
            kernel, tensors = cpu_as_device[-1]
            with open(kernel.manifest_path) as f:
                got = json.load(f)["spec"]
            want = S.spec_for(cfg)
            if _rewritten(q, k, v, kw) and got["name"] != want["name"]:
                # Decoding shapes run rewritten (attn/splitkv.py: query heads packed
                # into rows): the same call without a mask, in either layout (or,
                # where no such kernel is prebuilt, as given).
                want = {key: val for key, val in want.items() if key != "mask"}
                got, want = ({key: val for key, val in sp.items() if key not in ("name", "layout")}
                             for sp in (got, want))
                assert got == want, cfg["id"]
            else:
                assert got["name"] == want["name"], cfg["id"]
            _check_layouts(kernel, tensors)
            seen.add(cfg["id"])
    for cfg in gpu.LINEAR:
        for B, S_ in gpu.LINEAR_SHAPES:
            args, kw, fn, ps, x = gpu.linear_case(cfg, B, 3, S_, 1, device="cpu")
            _expect_runtime_device_error(lambda: fn(*args, **kw))
            kernel, tensors = cpu_as_device[-1]
            with open(kernel.manifest_path) as f:
                spec = json.load(f)["spec"]
            # The prebuilt kernel, or the same variant in the other layout where both
            # coincide (one step).
            assert {k: v for k, v in spec.items() if k not in ("name", "layout")} == \
                {k: v for k, v in S.spec_for(cfg).items() if k not in ("name", "layout")}
            assert kernel.manifest_path.startswith(K.kernel_dirs()[0])
            _check_layouts(kernel, tensors)
            seen.add(cfg["id"])
    assert seen == {c["id"] for c in P.GPU_TEST_CONFIGS}
    assert K.stats["compiles"] == 0


@needs_torch
def test_views_are_passed_without_copies(cpu_as_device):
    # [B, S, H, D] tensors seen as [B, H, S, D]: passed as they are, to a bshd kernel.
    q, k, v = (torch.randn(2, 50, 4, 128, dtype=torch.bfloat16).transpose(1, 2) for _ in range(3))
    _expect_runtime_device_error(lambda: attn.attention(q, k, v))
    kernel, tensors = cpu_as_device[-1]
    assert [t.data_ptr() for t in tensors[:3]] == [q.data_ptr(), k.data_ptr(), v.data_ptr()]
    assert json.load(open(kernel.manifest_path))["spec"]["layout"] == "bshd"
    assert tensors[3].transpose(1, 2).is_contiguous()  # out in the same memory order
    # Views of a packed [B, S, 3, H, D] projection (stride(S) = 3*H*D): the sm_90a
    # kernel reads query, key and value only through TMA maps encoded from the
    # tensors' own strides, so they pass as they are (and the runtime's checks
    # accept them: the error is the device's, not the strides').
    qkv = torch.randn(2, 50, 3, 4, 128, dtype=torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    _expect_runtime_device_error(lambda: attn.attention(q, k, v))
    kernel, tensors = cpu_as_device[-1]
    assert json.load(open(kernel.manifest_path))["spec"]["layout"] == "bshd"
    assert kernel.cached_any_strides == {"query", "key", "value"}
    assert [t.data_ptr() for t in tensors[:3]] == [q.data_ptr(), k.data_ptr(), v.data_ptr()]
    _check_layouts(kernel, tensors)
    # Rows padded to 256 columns too; a view a TMA map cannot describe (data
    # 2 bytes off a 16-byte boundary) is copied.
    base = torch.randn(2 * 4 * 50 * 128 + 1, dtype=torch.bfloat16)
    qm = base[1:].view(2, 4, 50, 128)
    wide = torch.randn(2, 4, 50, 256, dtype=torch.bfloat16)[..., :128]
    c = torch.randn(2, 4, 50, 128, dtype=torch.bfloat16)
    _expect_runtime_device_error(lambda: attn.attention(qm, wide, c, causal=True))
    kernel, tensors = cpu_as_device[-1]
    assert tensors[0].data_ptr() != qm.data_ptr()
    assert tensors[1].data_ptr() == wide.data_ptr() and tensors[2].data_ptr() == c.data_ptr()
    _check_layouts(kernel, tensors)


@needs_torch
def test_kernels_that_read_through_pointers_get_copies_in_their_layout(cpu_as_device,
                                                                       monkeypatch):
    # The sm_80 kernel (mma.sync) computes addresses from the spec's layout: the
    # packed views are copied into bshd (compiled on first use).
    monkeypatch.delenv("ATTN_KERNEL_PATH")
    monkeypatch.setenv("ATTN_CHIP", "sm_80")
    monkeypatch.setenv("ATTN_COMPILE", COMPILER)
    qkv = torch.randn(2, 50, 3, 4, 128, dtype=torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    _expect_runtime_device_error(lambda: attn.attention(q, k, v))
    kernel, tensors = cpu_as_device[-1]
    assert json.load(open(kernel.manifest_path))["chip"] == "sm_80"
    assert kernel.cached_any_strides == frozenset()
    assert all(t.data_ptr() != x.data_ptr() for t, x in zip(tensors, (q, k, v)))
    _check_layouts(kernel, tensors)


@needs_torch
def test_the_other_layout_serves_calls_where_both_coincide(cpu_as_device):
    """Only the bshd kernel of causal_f16_d64_bshd is prebuilt; a decoding call (one
    query row, one key/value head) whose tensors are dense in both layouts uses it."""
    q = torch.randn(2, 4, 1, 64, dtype=torch.float16)  # [B, H, 1, D]: bhsd order
    kv = torch.randn(2, 1, 77, 64, dtype=torch.float16)
    assert S.choose_layout((tuple(q.shape), q.stride()), (tuple(kv.shape), kv.stride())) == "bhsd"
    _expect_runtime_device_error(lambda: attn.attention(q, kv, kv, causal=True))
    kernel, tensors = cpu_as_device[-1]
    want = S.spec_for(dict(P.GPU_TEST_CONFIGS[2]))
    assert P.GPU_TEST_CONFIGS[2]["id"] == "causal_f16_d64_bshd"
    assert kernel.manifest_path.endswith(want["name"] + ".json")
    # Without that coincidence the missing kernel is reported.
    q2 = torch.randn(2, 4, 3, 64, dtype=torch.float16)
    with pytest.raises(K.KernelNotFoundError, match="layout bhsd"):
        attn.attention(q2, kv, kv, causal=True)


# ==========================================================================
# With torch, without a GPU: the launch replaced by a torch emulation, so that
# eager mode, torch.compile and opcheck run end to end on the CPU.

def _emulate(spec, roles, device, alternative=None):
    """What the kernel computes, for the specs used below (dense/causal softmax,
    plain linear attention)."""
    q, k, v, out = (roles[r].float() for r in ("query", "key", "value", "out"))
    D = q.shape[-1]
    scale = spec.get("scale", 1.0 / D ** 0.5)
    if spec["kind"] == "attention":
        assert set(spec.get("mask", {})) <= {"causal"} and "score" not in spec
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        s = scale * q @ k.transpose(-1, -2)
        Sq, Sk = s.shape[-2:]
        if spec.get("mask", {}).get("causal"):
            i = torch.arange(Sq)[:, None]
            j = torch.arange(Sk)[None, :]
            s = s.masked_fill(j > i + Sk - Sq, float("-inf"))
        lse = torch.logsumexp(s, -1)
        p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
        roles["out"].copy_(p @ v)
        roles["lse"].copy_(lse)
    else:
        assert spec["kind"] == "linear_attention" and spec["feature_map"] == "identity"
        a = (q @ k.transpose(-1, -2)).tril()
        roles["out"].copy_(scale * a @ v)


@pytest.fixture
def emulated(monkeypatch):
    import attn.ops
    monkeypatch.setattr(S, "check_device", lambda named: None)
    monkeypatch.setattr(attn.ops, "_launch", _emulate)


@needs_torch
def test_emulated_eager_matches_sdpa(emulated):
    torch.manual_seed(0)
    q = torch.randn(2, 6, 37, 64)
    k = torch.randn(2, 2, 37, 64)
    v = torch.randn(2, 2, 37, 32)
    out, lse = attn.attention(q, k, v, causal=True, return_lse=True)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(out, ref, rtol=2e-4, atol=2e-4)
    assert lse.shape == (2, 6, 37) and lse.dtype == torch.float32
    # [B, S, H, D] views: the output keeps that memory order.
    qb = q.transpose(1, 2).contiguous().transpose(1, 2)
    ob = attn.attention(qb, k, v, causal=True)
    torch.testing.assert_close(ob, ref, rtol=2e-4, atol=2e-4)


def _python_headers():
    import sysconfig
    return os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))


@needs_torch
@pytest.mark.skipif(not _python_headers(), reason="Inductor's CPU code needs Python.h "
                    "(python3-dev); the aot_eager tests above cover the tracing")
def test_emulated_inductor_compile_matches_eager(emulated):
    torch._dynamo.reset()
    torch.manual_seed(1)
    w = torch.randn(64, 3 * 64) * 0.1

    def block(x):
        B, S_, _ = x.shape
        qkv = (x @ w).view(B, S_, 3, 2, 32)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        o = attn.attention(q, k, v, causal=True)
        o = o + attn.linear_attention(q, k, v)
        return o.transpose(1, 2).reshape(B, S_, 64).relu()

    compiled = torch.compile(block, fullgraph=True, dynamic=True)
    for shape in ((2, 30, 64), (1, 47, 64)):
        x = torch.randn(*shape)
        torch.testing.assert_close(compiled(x), block(x), rtol=1e-4, atol=1e-4)


@needs_torch
def test_emulated_opcheck(emulated):
    torch.manual_seed(2)
    q, k = torch.randn(2, 4, 20, 32), torch.randn(2, 2, 30, 32)
    tests = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
    for layout, qq in (("bhsd", q), ("bshd", q.transpose(1, 2).contiguous().transpose(1, 2))):
        torch.library.opcheck(torch.ops.attn.attention.default,
                              (qq, k, k, None, None, None, None, [], "", True, None, None, None,
                               None, None, None, layout), test_utils=tests)
    x = torch.randn(2, 4, 20, 32)
    torch.library.opcheck(torch.ops.attn.linear_attention.default,
                          (x, x, x, None, "identity", False, None, False, "bhsd"),
                          test_utils=tests)


@needs_torch
def test_tile_counter_role_gets_a_fresh_tensor():
    # The dynamic scheduler's kernels list a trailing tile_counter role: the op makes
    # an int32 [1] tensor on the query's device for every launch (callers never pass
    # it; the runtime zeroes it on the launch stream, CudaRuntime.cpp); kernels without
    # the role get exactly the tensors they list.
    import attn.ops as O

    class FakeKernel:
        def __init__(self, roles):
            self.cached_roles = roles
            self.launched = []

        def launch(self, *tensors, stream=None):
            self.launched.append(tensors)

    q = torch.randn(1, 2, 8, 64, dtype=torch.bfloat16)
    roles = {"query": q, "key": q, "value": q, "out": q, "lse": torch.zeros(1, 2, 8)}
    k = FakeKernel(["query", "key", "value", "out", "lse", "tile_counter"])
    O._launch_kernel(k, {"name": "x"}, roles, None)
    O._launch_kernel(k, {"name": "x"}, roles, None)
    assert len(k.launched) == 2
    first, second = k.launched[0][-1], k.launched[1][-1]
    for c in (first, second):
        assert c.dtype == torch.int32 and tuple(c.shape) == (1,) and c.device == q.device
    assert first is not second
    assert "tile_counter" not in roles
    plain = FakeKernel(["query", "key", "value", "out", "lse"])
    O._launch_kernel(plain, {"name": "x"}, roles, None)
    assert len(plain.launched[0]) == 5


# ==========================================================================
# merge_attention: partial results over disjoint keys (CPU, plain torch ops).

def _partial_attention(q, k, v, visible):
    """float64 attention of q over k, v where `visible` [Sq, Sk] allows: (out, lse),
    out 0 and lse -inf on rows that see no key."""
    s = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    s = s.masked_fill(~visible, float("-inf"))
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    return p @ v, lse


@needs_torch
def test_merge_attention_equals_attention_over_the_union():
    torch.manual_seed(3)
    B, H, Sq, Sk, D, Dv = 2, 3, 120, 100, 16, 8
    q = torch.randn(B, H, Sq, D, dtype=torch.float64)
    k = torch.randn(B, H, Sk, D, dtype=torch.float64)
    v = torch.randn(B, H, Sk, Dv, dtype=torch.float64)
    i = torch.arange(Sq)[:, None]
    j = torch.arange(Sk)[None, :]
    causal = j <= i + Sk - Sq  # rows 0..19 see no key at all
    full_out, full_lse = _partial_attention(q, k, v, causal)
    cuts = [0, 40, 41, 77, Sk]
    outs, lses = [], []
    for a, b in zip(cuts, cuts[1:]):
        o, x = _partial_attention(q, k[:, :, a:b], v[:, :, a:b], causal[:, a:b])
        outs.append(o.float())
        lses.append(x.float())
    assert torch.isneginf(lses[-1]).any()  # parts with rows they do not reach
    out, lse = attn.merge_attention(outs, lses)
    assert out.dtype == torch.float32 and lse.dtype == torch.float32
    assert not out.isnan().any() and not lse.isnan().any()
    assert torch.isneginf(lse[:, :, :20]).all() and (out[:, :, :20] == 0).all()
    torch.testing.assert_close(out.double(), full_out, rtol=1e-5, atol=1e-5)
    seen = ~torch.isneginf(full_lse)
    torch.testing.assert_close(lse.double()[seen], full_lse[seen], rtol=1e-5, atol=1e-5)
    # One part is itself; bf16 outputs stay bf16.
    o1, l1 = attn.merge_attention(outs[:1], lses[:1])
    torch.testing.assert_close(o1, outs[0])
    ob, _ = attn.merge_attention([o.bfloat16() for o in outs], lses)
    assert ob.dtype == torch.bfloat16
    torch.testing.assert_close(ob.double(), full_out, rtol=2e-2, atol=2e-2)
    # Merging is associative: ((0, 1), (2, 3)) equals all four at once.
    left = attn.merge_attention(outs[:2], lses[:2])
    right = attn.merge_attention(outs[2:], lses[2:])
    nested = attn.merge_attention([left[0], right[0]], [left[1], right[1]])
    torch.testing.assert_close(nested[0], out, rtol=1e-5, atol=1e-6)


@needs_torch
def test_merge_attention_gradients_are_finite_on_unseen_rows():
    # A row no part saw (lse -inf everywhere), merged twice (a ring's nested merges),
    # with the merged lse in the loss: every gradient finite, the unseen row's zero.
    torch.manual_seed(4)
    outs = [torch.randn(1, 2, 3, 4, requires_grad=True) for _ in range(3)]
    lses = [torch.randn(1, 2, 3) for _ in range(3)]
    for x in lses:
        x[0, 0, 1] = float("-inf")
    lses = [x.requires_grad_() for x in lses]
    inner = attn.merge_attention(outs[:2], lses[:2])
    out, lse = attn.merge_attention([inner[0], outs[2]], [inner[1], lses[2]])
    assert torch.isneginf(lse[0, 0, 1]) and (out[0, 0, 1] == 0).all()
    seen = ~torch.isneginf(lse)
    (out.sum() + lse[seen].sum()).backward()
    for t in outs + lses:
        assert torch.isfinite(t.grad).all()
    assert (outs[0].grad[0, 0, 1] == 0).all() and lses[0].grad[0, 0, 1] == 0


@needs_torch
@pytest.mark.parametrize("call, match", [
    (lambda o, x: attn.merge_attention([], []), "0 outputs and 0 lses"),
    (lambda o, x: attn.merge_attention([o, o], [x]), "2 outputs and 1 lses"),
    (lambda o, x: attn.merge_attention(o, x), "expected lists"),
    (lambda o, x: attn.merge_attention([o, o[..., :4]], [x, x]), r"outs\[1\]: expected"),
    (lambda o, x: attn.merge_attention([o, o], [x, x.double()]),
     r"lses\[1\]: expected float32 \[2, 3, 5\]"),
    (lambda o, x: attn.merge_attention([o, o], [x, x[:, :, :4]]), r"lses\[1\]: expected"),
    (lambda o, x: attn.merge_attention([o, 1.0], [x, x]), r"outs\[1\]: expected a torch.Tensor"),
    (lambda o, x: attn.merge_attention([o[0]], [x[0]]), r"outs\[0\]: expected a floating-point"),
])
def test_merge_attention_errors(call, match):
    o = torch.randn(2, 3, 5, 8)
    x = torch.randn(2, 3, 5)
    with pytest.raises(attn.AttnArgumentError, match=match):
        call(o, x)


@needs_torch
@pytest.mark.parametrize("Sq", [1, 200])
def test_gpu_split_keys_test_runs_with_an_emulated_launch(emulated, monkeypatch, Sq):
    # test/gpu/test_torch_ops.py's split-KV test, on the CPU with the launch
    # emulated in torch: its parts, merge and checks hold together.
    gpu = _gpu_tests()
    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    gpu.test_split_keys_merge_into_the_whole(Sq)


@needs_torch
@pytest.mark.parametrize("cid,Sq", [("dense_bf16_d128", 1), ("dense_bf16_d128", 5),
                                     ("dense_bf16_d128_bshd", 1)])
def test_gpu_decoding_test_runs_with_an_emulated_launch(emulated, monkeypatch, cid, Sq):
    # test/gpu/test_torch_ops.py's decoding test on the CPU (an H200's 132 SMs
    # for the automatic split).
    import attn.ops as O
    gpu = _gpu_tests()
    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    monkeypatch.setattr(O, "_multiprocessors", lambda device: 132)
    gpu.test_decoding_packs_heads_and_splits_keys(cid, Sq)


@needs_torch
@pytest.mark.parametrize("cid", ["dense_bf16_d128", "dense_bf16_d128_bshd"])
def test_split_decoding_resolves_to_the_prebuilt_kernels(cpu_as_device, cid):
    # The GPU machine has no compiler: split decoding calls must launch the
    # prebuilt unmasked kernels, with the caller's keys as they are.
    gpu = _gpu_tests()
    cfg = gpu.BY_ID[cid]
    (q, k, v), kw, ps, x = gpu.attention_case(cfg, 3, 16, 4, 1, 6000, 1, device="cpu")
    _expect_runtime_device_error(lambda: attn.attention(q, k, v, num_splits=4))
    kernel, tensors = cpu_as_device[-1]
    assert kernel.manifest_path.endswith(S.spec_for(cfg)["name"] + ".json")
    _check_layouts(kernel, tensors)
    key = tensors[list(kernel.cached_roles).index("key")]
    assert key.data_ptr() == k.data_ptr() and key.shape[2] == 1500


# ==========================================================================
# attention_varlen: FlashAttention's packed-sequence interface, translated into
# one document-masked attention call. Checked on the CPU by evaluating the call
# it makes with the float64 reference of our spec semantics (test/exec/
# attn_numpy.py) against attention computed sequence by sequence.

def _spec_reference_attention(q, k, v, *, causal=False, window=None, doc_ids=None,
                              mask_mod=None, score_mod=None, tensors=None, softcap=None,
                              alibi_slopes=None, scale=None, return_lse=False):
    """attn.attention's semantics in float64 (the spec the binding would compile,
    evaluated by attn_numpy): stands in for the GPU kernel."""
    sys.path.insert(0, os.path.join(ROOT, "test", "exec"))
    import numpy as np
    import attn_numpy
    tensors = tensors or {}
    decls = {n: (S.tensor_spec_dtype(S.TensorInfo(tuple(t.shape), tuple(t.stride()),
                                                  str(t.dtype).split(".")[-1], "cpu")), t.dim())
             for n, t in tensors.items()}
    spec = S.attention_spec(dtype="f32", head_dim=q.shape[3], head_dim_v=v.shape[3],
                            causal=causal, window=S.normalize_window(window),
                            documents=doc_ids is not None, softcap=softcap,
                            alibi="per_head" if alibi_slopes is not None else None,
                            mask_mod=mask_mod, score_mod=score_mod, scale=scale,
                            tensors=decls or None)
    x = {n: t.double().numpy() for n, t in (("q", q), ("k", k), ("v", v))}
    if doc_ids is not None:
        x["q_doc_ids"], x["kv_doc_ids"] = (t.numpy().astype(np.int64) for t in doc_ids)
    if alibi_slopes is not None:
        x["alibi_slopes"] = alibi_slopes.double().numpy()
    for n, t in tensors.items():
        x[n] = t.numpy()
    ref = attn_numpy.reference(attn_numpy.PySpec(spec), x)
    out, lse = torch.from_numpy(ref["o"]), torch.from_numpy(ref["lse"])
    return (out, lse) if return_lse else out


def _per_sequence(q, k, v, cu_q, cu_k, causal, window, scale, softcap=None, slopes=None):
    """Each sequence on its own, float64, bottom-right aligned per sequence (soft-cap,
    then ALiBi -slope * |i + Lk - Lq - j|, as FlashAttention)."""
    outs, lses = [], []
    rep = q.shape[1] // k.shape[1]
    for b in range(len(cu_q) - 1):
        qs, ks = q[cu_q[b]:cu_q[b + 1]].double(), k[cu_k[b]:cu_k[b + 1]].double()
        vs = v[cu_k[b]:cu_k[b + 1]].double()
        Lq, Lk = qs.shape[0], ks.shape[0]
        s = scale * torch.einsum("ihd,jhd->hij", qs, ks.repeat_interleave(rep, 1))
        i, j = torch.arange(Lq)[:, None], torch.arange(Lk)[None, :]
        diag = i + Lk - Lq
        if softcap is not None:
            s = softcap * torch.tanh(s / softcap)
        if slopes is not None:
            s = s - slopes.double()[:, None, None] * (diag - j).abs()
        ok = torch.ones(Lq, Lk, dtype=torch.bool)
        if causal:
            ok &= j <= diag
        if window is not None:
            ok &= (j >= diag - window[0]) & (j <= diag + window[1])
        s = s.masked_fill(~ok, float("-inf"))
        lse = torch.logsumexp(s, -1)
        p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
        outs.append(torch.einsum("hij,jhd->ihd", p, vs.repeat_interleave(rep, 1)))
        lses.append(lse)
    return torch.cat(outs), torch.cat(lses, 1)


@needs_torch
@pytest.mark.parametrize("case", ["equal_causal", "equal_window", "equal_dense",
                                  "unequal_causal", "unequal_window", "unequal_dense",
                                  "equal_alibi_softcap", "unequal_alibi", "unequal_alibi_causal",
                                  "unequal_window2_scale"])
def test_attention_varlen_matches_attention_per_sequence(monkeypatch, case):
    import attn.ops as O
    monkeypatch.setattr(O, "attention", _spec_reference_attention)
    torch.manual_seed(7)
    lq = [5, 0, 17, 9]
    # Unequal: longer keys (a cached prefix), one shorter (rows with no key), one empty.
    lk = lq if case.startswith("equal") else [12, 3, 17, 4]
    cu_q = torch.tensor([0] + lq).cumsum(0).to(torch.int32)
    cu_k = torch.tensor([0] + lk).cumsum(0).to(torch.int32)
    Hq, Hkv, D, Dv = 4, 2, 8, 4
    q = torch.randn(sum(lq), Hq, D)
    k = torch.randn(sum(lk), Hkv, D)
    v = torch.randn(sum(lk), Hkv, Dv)
    causal = case.endswith("causal") or case.endswith("_window")
    # window2: both sides, no causal bound (the right side must not be dropped).
    window = (3, 0) if case.endswith("_window") else (4, 2) if "window2" in case else None
    softcap = 2.0 if "softcap" in case else None
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625]) if "alibi" in case else None
    scale = 0.2 if "scale" in case else None
    out, lse = attn.attention_varlen(q, k, v, cu_q, None if case.startswith("equal") else cu_k,
                                     causal=causal, window=window, softcap=softcap,
                                     alibi_slopes=slopes, scale=scale, return_lse=True)
    ref_out, ref_lse = _per_sequence(q, k, v, cu_q.tolist(), cu_k.tolist(), causal, window,
                                     scale or D ** -0.5, softcap, slopes)
    assert out.shape == (sum(lq), Hq, Dv) and lse.shape == (Hq, sum(lq))
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-9, atol=1e-9)
    seen = ~torch.isneginf(ref_lse)
    assert (torch.isneginf(lse) == ~seen).all()
    torch.testing.assert_close(lse.double()[seen], ref_lse[seen], rtol=1e-9, atol=1e-9)
    if case == "unequal_causal":
        assert (~seen).any()  # the sequence with fewer keys than queries


@needs_torch
def test_attention_varlen_errors(monkeypatch):
    import attn.ops as O
    monkeypatch.setattr(O, "attention", _spec_reference_attention)
    q, k = torch.randn(10, 2, 8), torch.randn(12, 2, 8)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    with pytest.raises(AttnArgumentError, match=r"q: expected \[total, H, D\]"):
        attn.attention_varlen(q[None], k, k, cu)
    with pytest.raises(AttnArgumentError, match="k and v: expected the same number of tokens"):
        attn.attention_varlen(q, k, k[:5], cu, torch.tensor([0, 6, 12]))
    with pytest.raises(AttnArgumentError, match=r"cu_seqlens_k: expected 0 first, nondecreasing, "
                                                r"and 12 \(the tokens given\) last; got first 0, "
                                                r"last 10"):
        attn.attention_varlen(q, k, k, cu, cu.clone())
    with pytest.raises(AttnArgumentError, match="shortest sequence -2"):
        attn.attention_varlen(q, q, q, torch.tensor([0, 6, 4, 10]))
    with pytest.raises(AttnArgumentError, match=r"cu_seqlens_q: expected an int32 or int64"):
        attn.attention_varlen(q, q, q, cu.float())
    with pytest.raises(AttnArgumentError, match="2 and 3 sequences"):
        attn.attention_varlen(q, k, k, cu, torch.tensor([0, 6, 8, 12]))
    with pytest.raises(AttnArgumentError, match=r"alibi_slopes: expected \[Hq\]"):
        attn.attention_varlen(q, k, k, cu, torch.tensor([0, 6, 12]), causal=True,
                              alibi_slopes=torch.ones(1, 2))
    with pytest.raises(AttnArgumentError, match="cu_seqlens_q: expected a tensor on meta"):
        attn.attention_varlen(q.to("meta"), k.to("meta"), k.to("meta"), cu)


@needs_torch
@pytest.mark.parametrize("unequal", [False, True])
def test_gpu_varlen_test_runs_with_the_spec_reference(monkeypatch, unequal):
    # test/gpu/test_torch_ops.py's varlen test on the CPU, attn.attention replaced
    # by the float64 spec reference: its cases, reference and checks hold together.
    import attn.ops as O
    gpu = _gpu_tests()
    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    monkeypatch.setattr(O, "attention", _spec_reference_attention)
    gpu.test_attention_varlen_matches_each_sequence(unequal)


@needs_torch
@pytest.mark.parametrize("unequal", [False, True])
def test_varlen_calls_resolve_to_the_prebuilt_kernels(cpu_as_device, unequal):
    # The GPU machine has no compiler: attention_varlen's calls must be exactly the
    # prebuilt varlen configurations (same spec, hence same kernel name).
    q = torch.randn(20, 4, 64, dtype=torch.bfloat16)
    k = torch.randn(26 if unequal else 20, 2, 64, dtype=torch.bfloat16)
    cu_q = torch.tensor([0, 5, 20], dtype=torch.int32)
    cu_k = torch.tensor([0, 11, 26], dtype=torch.int32) if unequal else None
    _expect_runtime_device_error(lambda: attn.attention_varlen(q, k, k, cu_q, cu_k, causal=True))
    kernel, tensors = cpu_as_device[-1]
    cid = "varlen_unequal_bf16_d64_bshd" if unequal else "varlen_bf16_d64_bshd"
    want = S.spec_for(next(c for c in P.GPU_TEST_CONFIGS if c["id"] == cid))["name"]
    assert kernel.manifest_path.endswith(want + ".json")
    # [total, H, D] tensors go in as [1, H, total, D] views: no copies.
    assert tensors[0].data_ptr() == q.data_ptr() and tensors[1].data_ptr() == k.data_ptr()
