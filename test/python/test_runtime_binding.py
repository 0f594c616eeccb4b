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


def test_dlpack_launch_paths(causal_manifest):
    """Kernel.launch_dlpack on the CPU machine: NumPy arrays are DLPack
    producers too, in host memory, so the C API's DLPack conversion refuses
    them by argument; objects that are not DLPack, and capsules already
    consumed, are refused before the C call."""
    import ctypes
    k = attn.Kernel(causal_manifest)
    q = np.ones((2, 16, 10, 128), np.float16)
    lse = np.ones((2, 16, 10), np.float32)
    with pytest.raises(attn.AttnError) as e:
        k.launch_dlpack(q, q, q, q, lse)
    assert e.value.status == "not on device"
    assert "argument 0 (query): the tensor is not on a CUDA device (DLPack device type 1)" in str(e.value)
    # A capsule is accepted as such (and only borrowed: usable again).
    capsule = q.__dlpack__()
    for _ in range(2):
        with pytest.raises(attn.AttnError) as e:
            k.launch_dlpack(capsule, q, q, q, lse)
        assert e.value.status == "not on device"
    with pytest.raises(attn.AttnError) as e:
        k.launch_dlpack(q, q, q, q, object())
    assert e.value.status == "invalid argument"
    assert "object is neither a DLPack capsule nor has __dlpack__" in str(e.value)
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    new_capsule.restype = ctypes.py_object
    used_name = ctypes.c_char_p(b"used_dltensor")  # outlives the capsule below
    used = new_capsule(q.ctypes.data, used_name, None)
    with pytest.raises(attn.AttnError) as e:
        k.launch_dlpack(used, q, q, q, lse)
    assert "argument 0: expected an unconsumed DLPack capsule named 'dltensor'" in str(e.value)
