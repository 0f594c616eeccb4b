"""Bad inputs and bad command lines: exit status 1, a message naming the file
(and the expected shape), and no output file left behind."""

import copy
import os
import subprocess

import numpy as np
import pytest

from attn_numpy import ATTN_EXEC, DEVICES, make_inputs, PySpec, run_exec, save_inputs, write_spec

BASE = {"name": "bad", "kind": "attention", "dtype": "f32",
        "shape": {"batch": None, "heads_q": 4, "heads_kv": 4, "seq_q": None,
                  "seq_k": None, "head_dim": 64},
        "mask": {"causal": True}}


def with_(base, **changes):
    """A copy of base with changes; "a__b" sets d["a"]["b"] (None -> null)."""
    d = copy.deepcopy(base)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return d


def setup_case(tmp_path, spec_dict, B=2, Hq=4, Hkv=4, Sq=130, Sk=130, Dqk=64, Dv=64):
    spec = PySpec(spec_dict)
    if not spec.attention:
        Hkv, Sk = Hq, Sq
    files, _ = make_inputs(spec, np.random.default_rng(5), B, Hq, Hkv, Sq, Sk, Dqk, Dv)
    return spec, files


def expect_failure(tmp_path, spec_dict, files, device, *needles, out_exists=False):
    spec_path = write_spec(tmp_path, spec_dict)
    in_dir, out_dir = str(tmp_path / "in"), str(tmp_path / "out")
    save_inputs(in_dir, files)
    if out_exists:
        os.makedirs(out_dir, exist_ok=True)
    r = run_exec(spec_path, in_dir, out_dir, device)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith("attn-exec: "), r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert "Traceback" not in r.stderr and "terminate" not in r.stderr
    if os.path.exists(out_dir):
        assert os.listdir(out_dir) == [], os.listdir(out_dir)
    return r.stderr


@pytest.mark.parametrize("device", DEVICES)
def test_valid_base_case_runs(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    save_inputs(str(tmp_path / "in"), files)
    r = run_exec(write_spec(tmp_path, BASE), str(tmp_path / "in"), str(tmp_path / "out"), device)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["lse.npy", "o.npy"]


@pytest.mark.parametrize("device", DEVICES)
def test_missing_file(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    del files["k.npy"]
    expect_failure(tmp_path, BASE, files, device, "k.npy", "missing")


@pytest.mark.parametrize("device", DEVICES)
def test_wrong_head_dim_message(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    files["k.npy"] = files["k.npy"][..., :32].copy()
    err = expect_failure(tmp_path, BASE, files, device)
    assert err.strip() == ("attn-exec: k.npy: expected shape [2, 4, 130, 64] "
                           "([B, Hkv, Sk, Dqk]), got [2, 4, 130, 32]"), err


@pytest.mark.parametrize("device", DEVICES)
def test_inconsistent_sequence_lengths(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    files["v.npy"] = files["v.npy"][:, :, :129].copy()
    err = expect_failure(tmp_path, BASE, files, device)
    assert err.strip() == ("attn-exec: v.npy: expected shape [2, 4, 130, 64] "
                           "([B, Hkv, Sk, Dv]), got [2, 4, 129, 64]"), err


@pytest.mark.parametrize("device", DEVICES)
def test_wrong_rank(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    files["q.npy"] = files["q.npy"][0].copy()
    expect_failure(tmp_path, BASE, files, device, "q.npy: expected shape",
                   "[B, Hq, Sq, Dqk]", "got [4, 130, 64]")


@pytest.mark.parametrize("device", DEVICES)
def test_static_head_count_mismatch(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE, Hq=3, Hkv=3)
    expect_failure(tmp_path, BASE, files, device, "q.npy: expected shape [2, 4, 130, 64]",
                   "got [2, 3, 130, 64]")


@pytest.mark.parametrize("device", DEVICES)
def test_batch_mismatch(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    files["k.npy"] = np.concatenate([files["k.npy"]] * 2)
    expect_failure(tmp_path, BASE, files, device, "k.npy: expected shape [2, 4, 130, 64]",
                   "got [4, 4, 130, 64]")


@pytest.mark.parametrize("device", DEVICES)
def test_non_multiple_heads(device, tmp_path):
    d = with_(BASE, shape__heads_q=None, shape__heads_kv=None)
    spec, files = setup_case(tmp_path, d, Hq=6, Hkv=4)
    expect_failure(tmp_path, d, files, device, "k.npy", "Hq = 6", "Hkv = 4", "multiple")


@pytest.mark.parametrize("device", DEVICES)
def test_wrong_dtype(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    files["q.npy"] = files["q.npy"].astype(np.float64)
    expect_failure(tmp_path, BASE, files, device, "q.npy", "float64", "float32")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,bad", [("bf16", np.float16), ("f16", np.uint16),
                                       ("f32", np.float16), ("f32", np.uint16)])
def test_element_type_not_accepted(dtype, bad, device, tmp_path):
    d = with_(BASE, dtype=dtype)
    spec, files = setup_case(tmp_path, d)
    files["v.npy"] = files["v.npy"].astype(bad)
    expect_failure(tmp_path, d, files, device, "v.npy", "dtype")


@pytest.mark.parametrize("device", DEVICES)
def test_bshd_layout_names(device, tmp_path):
    d = with_(BASE, layout="bshd")
    spec, files = setup_case(tmp_path, d)
    files["q.npy"] = files["q.npy"].transpose(0, 2, 1, 3).copy()  # saved as bhsd
    expect_failure(tmp_path, d, files, device, "q.npy: expected shape",
                   "([B, Sq, Hq, Dqk])", "got [2, 4, 130, 64]")


@pytest.mark.parametrize("device", DEVICES)
def test_zero_sized_dimension(device, tmp_path):
    d = with_(BASE, shape__heads_q=None, shape__heads_kv=None)
    spec, files = setup_case(tmp_path, d)
    files["q.npy"] = np.zeros((2, 4, 0, 64), np.float32)
    expect_failure(tmp_path, d, files, device, "q.npy", ">= 1")


BLOCK = with_(BASE, mask={"block_sparse": {"block_q": 16, "block_k": 32}})


@pytest.mark.parametrize("device", DEVICES)
def test_block_layout_wrong_size(device, tmp_path):
    spec, files = setup_case(tmp_path, BLOCK)
    files["block_mask.npy"] = np.ones((2, 4, 8, 5), np.uint8)  # needs 9 rows
    err = expect_failure(tmp_path, BLOCK, files, device)
    assert err.strip() == ("attn-exec: block_mask.npy: expected shape "
                           "[2 or 1, 4 or 1, 9, 5] ([B or 1, Hq or 1, ceil(Sq/block_q), "
                           "ceil(Sk/block_k)]), got [2, 4, 8, 5]"), err


@pytest.mark.parametrize("device", DEVICES)
def test_block_layout_wrong_dtype_and_missing(device, tmp_path):
    spec, files = setup_case(tmp_path, BLOCK)
    files["block_mask.npy"] = files["block_mask.npy"].astype(np.float32)
    expect_failure(tmp_path, BLOCK, files, device, "block_mask.npy", "uint8")
    del files["block_mask.npy"]
    os.remove(tmp_path / "in" / "block_mask.npy")
    expect_failure(tmp_path, BLOCK, files, device, "block_mask.npy", "missing")


@pytest.mark.parametrize("device", DEVICES)
def test_document_ids(device, tmp_path):
    d = with_(BASE, mask={"documents": True})
    spec, files = setup_case(tmp_path, d, Sk=77)
    good = dict(files)
    files["kv_doc_ids.npy"] = files["kv_doc_ids.npy"].astype(np.int64)
    expect_failure(tmp_path, d, files, device, "kv_doc_ids.npy", "int32")
    files = dict(good)
    files["q_doc_ids.npy"] = files["q_doc_ids.npy"][:, :100].copy()
    expect_failure(tmp_path, d, files, device,
                   "q_doc_ids.npy: expected shape [2, 130] ([B, Sq]), got [2, 100]")


@pytest.mark.parametrize("device", DEVICES)
def test_alibi_shape(device, tmp_path):
    d = with_(BASE, score={"alibi": "per_batch_head"})
    spec, files = setup_case(tmp_path, d)
    files["alibi_slopes.npy"] = files["alibi_slopes.npy"][0].copy()
    expect_failure(tmp_path, d, files, device,
                   "alibi_slopes.npy: expected shape [2, 4] ([B, Hq]), got [4]")


@pytest.mark.parametrize("device", DEVICES)
def test_custom_tensor(device, tmp_path):
    d = with_(BASE, tensors={"bias": {"dtype": "i32", "shape": [4, None]}},
              score={"custom": "score + bias[h, k]"})
    spec, files = setup_case(tmp_path, d)
    good = dict(files)
    files["bias.npy"] = files["bias.npy"].astype(np.float32)
    expect_failure(tmp_path, d, files, device, "bias.npy", "int32")
    files = dict(good)
    files["bias.npy"] = np.zeros((5, 130), np.int32)
    expect_failure(tmp_path, d, files, device, "bias.npy: expected shape [4, 130]", "got [5, 130]")
    # Too short for the keys it is indexed with: a run-time error, no output.
    # Only the reference checks indices today; the compiled paths do not
    # bounds-check loads from captured tensors (README: known gaps).
    if device == "reference":
        files = dict(good)
        files["bias.npy"] = np.ones((4, 100), np.int32)
        expect_failure(tmp_path, d, files, device, "bias", "out of range")


GATED = {"name": "g", "kind": "gated_linear_attention", "dtype": "f32",
         "shape": {"batch": None, "heads": 4, "seq": None, "head_dim": 16},
         "gate": "vector", "state": {"initial": True, "final": True}}


@pytest.mark.parametrize("device", DEVICES)
def test_gates_and_states(device, tmp_path):
    spec, files = setup_case(tmp_path, GATED, Dqk=16, Dv=16, Sq=17)
    good = dict(files)
    files["g.npy"] = files["g.npy"][..., 0].copy()
    expect_failure(tmp_path, GATED, files, device,
                   "g.npy: expected shape [2, 4, 17, 16] ([B, H, S, Dqk]), got [2, 4, 17]")
    files = dict(good)
    del files["h0.npy"]
    os.remove(tmp_path / "in" / "h0.npy")
    expect_failure(tmp_path, GATED, files, device, "h0.npy", "missing")
    files = dict(good)
    files["h0.npy"] = files["h0.npy"][:, :, :8].copy()
    expect_failure(tmp_path, GATED, files, device,
                   "h0.npy: expected shape [2, 4, 16, 16] ([B, H, Dqk, Dv]), got [2, 4, 8, 16]")
    # Linear kinds have one sequence length: k with another is inconsistent.
    files = dict(good)
    files["k.npy"] = files["k.npy"][:, :, :10].copy()
    expect_failure(tmp_path, GATED, files, device,
                   "k.npy: expected shape [2, 4, 17, 16] ([B, H, S, Dqk]), got [2, 4, 10, 16]")


@pytest.mark.parametrize("device", DEVICES)
def test_malformed_npy_files(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    save_inputs(str(tmp_path / "in"), files)
    path = tmp_path / "in" / "v.npy"
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    spec_path = write_spec(tmp_path, BASE)
    out_dir = str(tmp_path / "out")
    r = run_exec(spec_path, str(tmp_path / "in"), out_dir, device)
    assert r.returncode == 1 and "v.npy" in r.stderr and "truncated" in r.stderr, r.stderr
    assert not os.path.exists(out_dir) or os.listdir(out_dir) == []
    path.write_bytes(b"garbage")
    r = run_exec(spec_path, str(tmp_path / "in"), out_dir, device)
    assert r.returncode == 1 and "v.npy" in r.stderr, r.stderr
    np.save(path, np.asfortranarray(np.ones((2, 4, 130, 64), np.float32)))
    r = run_exec(spec_path, str(tmp_path / "in"), out_dir, device)
    assert r.returncode == 1 and "v.npy" in r.stderr and "fortran" in r.stderr, r.stderr
    assert not os.path.exists(out_dir) or os.listdir(out_dir) == []


@pytest.mark.parametrize("device", DEVICES)
def test_failure_keeps_existing_output_dir_clean(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    del files["v.npy"]
    expect_failure(tmp_path, BASE, files, device, "v.npy", out_exists=True)


@pytest.mark.parametrize("device", DEVICES)
def test_spec_errors(device, tmp_path):
    spec, files = setup_case(tmp_path, BASE)
    save_inputs(str(tmp_path / "in"), files)
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x", "kind": "attention",')
    r = run_exec(str(bad), str(tmp_path / "in"), str(tmp_path / "out"), device)
    assert r.returncode == 1 and str(bad) in r.stderr, r.stderr
    bad.write_text('{"name": "x", "kind": "attention", "dtype": "f64", "shape": {"head_dim": 4}}')
    r = run_exec(str(bad), str(tmp_path / "in"), str(tmp_path / "out"), device)
    assert r.returncode == 1 and str(bad) in r.stderr and "dtype" in r.stderr, r.stderr
    r = run_exec(str(tmp_path / "nope.json"), str(tmp_path / "in"), str(tmp_path / "out"), device)
    assert r.returncode == 1 and "nope.json" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "out")


def _run(*args):
    return subprocess.run([ATTN_EXEC, *args], capture_output=True, text=True, timeout=60)


def test_usage_errors(tmp_path):
    spec = write_spec(tmp_path, BASE)
    i, o = str(tmp_path / "in"), str(tmp_path / "out")
    cases = [
        [],
        [spec],
        [spec, "--inputs", i, "--outputs", o],
        [spec, "--inputs", i, "--outputs", o, "--device"],
        [spec, "--inputs", i, "--outputs", o, "--device", "tpu"],
        [spec, "--inputs", i, "--outputs", o, "--device", "reference", "--frobnicate"],
        [spec, "--inputs", i, "--outputs", o, "--device", "reference", "-x"],
        [spec, spec, "--inputs", i, "--outputs", o, "--device", "reference"],
        [spec, "--inputs", i, "--inputs", i, "--outputs", o, "--device", "reference"],
        [spec, "--inputs=", "--outputs", o, "--device", "reference"],
    ]
    for args in cases:
        r = _run(*args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr.startswith("attn-exec: "), (args, r.stderr)
        assert "usage: attn-exec" in r.stderr, (args, r.stderr)
    assert not os.path.exists(o)


def test_help():
    for flag in ("--help", "-h"):
        r = _run(flag)
        assert r.returncode == 0
        assert r.stdout.startswith("usage: attn-exec SPEC.json --inputs DIR --outputs DIR")


def test_flag_equals_value_form(tmp_path):
    spec, files = setup_case(tmp_path, BASE, Sq=5, Sk=9)
    save_inputs(str(tmp_path / "in"), files)
    r = _run("--device=reference", "--inputs=" + str(tmp_path / "in"),
             write_spec(tmp_path, BASE), "--outputs=" + str(tmp_path / "o2"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "o2")) == ["lse.npy", "o.npy"]


def test_unavailable_devices(tmp_path):
    spec, files = setup_case(tmp_path, BASE, Sq=5, Sk=9)
    save_inputs(str(tmp_path / "in"), files)
    spec_path = write_spec(tmp_path, BASE)
    r = run_exec(spec_path, str(tmp_path / "in"), str(tmp_path / "out"), "cuda")
    if r.returncode != 0:  # CI: no GPU driver (the GPU machine runs test/gpu instead)
        assert r.returncode == 1
        assert "libcuda.so.1" in r.stderr or "no CUDA headers" in r.stderr, r.stderr
        assert not os.path.exists(tmp_path / "out")
    r = run_exec(spec_path, str(tmp_path / "in"), str(tmp_path / "out"), "cpu")
    if r.returncode != 0:  # a runtime-only build
        assert r.returncode == 1
        assert "--device cpu needs the compiler" in r.stderr, r.stderr
        assert not os.path.exists(tmp_path / "out")
