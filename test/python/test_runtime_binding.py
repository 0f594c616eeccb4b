"""The ctypes binding's error paths, on the CPU machine (no torch needed)."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import attn  # noqa: E402


class FakeTensor:
    """What the binding reads from a torch tensor."""

    def __init__(self, array, dtype=None):
        self.array = array
        self.shape = array.shape
        self.dtype = dtype or ("torch." + {"float32": "float32", "float16": "float16",
                                           "int32": "int32", "uint8": "uint8"}[str(array.dtype)])

    def data_ptr(self):
        return self.array.ctypes.data

    def stride(self):
        return tuple(s // self.array.itemsize for s in self.array.strides)


@pytest.fixture(scope="module")
def causal_manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernels")
    # The one-item grid (causal D = 128 defaults to the dynamic scheduler,
    # whose extra tile_counter role dynamic_manifest below covers).
    subprocess.run([os.path.join(ROOT, "build", "bin", "attn-compile"),
                    os.path.join(ROOT, "examples", "causal.json"), "-o", str(out), "-q",
                    "--dynamic-scheduler=false"],
                   check=True)
    return str(out / "causal.json")


def test_missing_manifest():
    with pytest.raises(attn.AttnError) as e:
        attn.Kernel("/nonexistent/kernel.json")
    assert e.value.status == "I/O error"
    assert "cannot open" in str(e.value)


def test_roles_and_argument_checks(causal_manifest):
    k = attn.Kernel(causal_manifest)
    assert k.roles == ["query", "key", "value", "out", "lse"]
    q = FakeTensor(np.ones((2, 16, 10, 128), np.float16), dtype="torch.bfloat16")
    lse = FakeTensor(np.ones((2, 16, 10), np.float32))
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, q, q, q)
    assert e.value.status == "invalid argument"
    assert "expected 5 tensors (query, key, value, out, lse), got 4" in str(e.value)
    bad = FakeTensor(np.ones((2, 16, 10, 128), np.float16))  # f16 where the spec says bf16
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, bad, q, q, lse)
    assert "key: expected bf16 [2, 16, 10, 128], got f16" in str(e.value)
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, q, q, q, FakeTensor(np.ones((2,), np.float64), dtype="torch.float64"))
    assert "dtype float64 is not supported" in str(e.value)
    # Valid arguments in host memory: refused before any kernel runs (on a
    # machine without a driver the driver error comes first).
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, q, q, q, lse)
    assert e.value.status in ("not on device", "CUDA error")


@pytest.fixture(scope="module")
def dynamic_manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernels_dyn")
    r = subprocess.run([os.path.join(ROOT, "build", "bin", "attn-compile"),
                        os.path.join(ROOT, "examples", "causal.json"), "-o", str(out), "-q",
                        "--chip", "sm_90a", "--persistent", "--dynamic-scheduler"],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip("attn-compile for sm_90a failed (no ptxas?): " + r.stderr)
    return str(out / "causal.json")


def test_tile_counter_role(dynamic_manifest):
    k = attn.Kernel(dynamic_manifest)
    assert k.roles == ["query", "key", "value", "out", "lse", "tile_counter"]
    q = FakeTensor(np.ones((2, 16, 10, 128), np.float16), dtype="torch.bfloat16")
    lse = FakeTensor(np.ones((2, 16, 10), np.float32))
    counter = FakeTensor(np.zeros((1,), np.int32))
    # With the counter or without it (the runtime then uses one of its own): the
    # arguments pass; host memory is refused before any kernel runs.
    for args in ((q, q, q, q, lse, counter), (q, q, q, q, lse)):
        with pytest.raises(attn.AttnError) as e:
            k.launch(*args)
        assert e.value.status in ("not on device", "CUDA error"), str(e.value)
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, q, q, q, lse, FakeTensor(np.zeros((2,), np.int32)))
    assert "tile_counter: expected i32 [1], got i32 [2]" in str(e.value)
    with pytest.raises(attn.AttnError) as e:
        k.launch(q, q, q, q)
    assert "expected 6 tensors (query, key, value, out, lse, tile_counter), got 4" in str(e.value)
