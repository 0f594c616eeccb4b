"""Every examples/*.json variant, shrunk to small shapes, on random inputs:
attn-exec's outputs against the independent numpy implementation."""

import copy
import glob
import os

import pytest

from attn_numpy import (DEVICES, EXAMPLES_DIR, PySpec, load_spec_json, run_case,
                        seed_of)

EXAMPLES = sorted(glob.glob(os.path.join(EXAMPLES_DIR, "*.json")))

DQK, DV = 16, 16

# (id, B, Sq, Sk, input options); linear kinds use Sk = Sq.
CASES = [
    ("1x1", 1, 1, 1, {}),
    ("17", 2, 17, 17, {}),
    ("17x130", 1, 17, 130, {}),
    ("130x17", 2, 130, 17, {}),
    ("1x130-native", 1, 1, 130, {"encoding": "native"}),
    ("130-unrounded", 1, 130, 130, {"unrounded": True}),
    ("17x130-x100", 1, 17, 130, {"magnitude": 100.0}),
]


def shrink(d):
    """The example with small static sizes: heads 2 (or 8/2 keeping a
    grouped-query ratio of 4), head_dim 16, windows and blocks that bite."""
    d = copy.deepcopy(d)
    s = d["shape"]
    if d["kind"] == "attention":
        hq0, hkv0 = s.get("heads_q"), s.get("heads_kv")
        ratio = hq0 // hkv0 if hq0 and hkv0 else 1
        hkv = 2
        hq = hkv * ratio if ratio > 1 else 2
        if hq0 is not None:
            s["heads_q"] = hq
        if hkv0 is not None:
            s["heads_kv"] = hkv
        for decl in d.get("tensors", {}).values():
            decl["shape"] = [hq if dim == hq0 and dim is not None else dim
                             for dim in decl["shape"]]
    else:
        hq = hkv = 2
        if s.get("heads") is not None:
            s["heads"] = hq
    s["head_dim"] = DQK
    if "head_dim_v" in s:
        s["head_dim_v"] = DV
    mask = d.get("mask", {})
    if "window" in mask:
        mask["window"] = {k: min(v, 9) for k, v in mask["window"].items()}
    if "block_sparse" in mask:
        mask["block_sparse"] = {"block_q": 16, "block_k": 8}
    d.pop("options", None)  # tile sizes for the full-size shapes
    return d, hq, hkv


@pytest.mark.parametrize("dtype", ["example", "f32"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("example", EXAMPLES, ids=[os.path.basename(e)[:-5] for e in EXAMPLES])
def test_example(example, case, device, dtype, tmp_path):
    """dtype "f32" recompiles the example in f32, where the compiled path must
    match the float64 reference to 1e-5 (softmax) / 1e-4 (linear)."""
    cid, B, Sq, Sk, options = case
    d, hq, hkv = shrink(load_spec_json(example))
    if dtype == "f32":
        if d["dtype"] == "f32" or options.get("encoding") == "native":
            pytest.skip("already f32 / native encoding is about the spec's dtype")
        d["dtype"] = "f32"
    PySpec(d)  # fails loudly on a spec feature the numpy side does not know
    run_case(tmp_path, d, device, B, hq, hkv, Sq, Sk, DQK, DV,
             seed_of(os.path.basename(example), cid), **options)


def test_examples_exist():
    assert EXAMPLES, "no examples/*.json found"
