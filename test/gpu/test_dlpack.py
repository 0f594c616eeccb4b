"""The C API's DLPack launch (attn_kernel_launch_dlpack, through
attn.Kernel.launch_dlpack) on the GPU: torch CUDA tensors handed over as
DLPack, checked against a float32 reference; and its refusals (host memory, a
wrong dtype). Runs on the GPU machine (scripts/gpu/all.sh, with the PyTorch
binding's tests) against prepare.sh's default sm_90a kernels:

    ATTN_RUNTIME_LIB=build-rt/lib/libattn_runtime.so \\
    ATTN_DLPACK_KERNELS=gpu-kernels/tc_sm_90a python3 -m pytest -q test/gpu/test_dlpack.py
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import attn  # noqa: E402

torch = pytest.importorskip("torch")
KERNELS = os.environ.get("ATTN_DLPACK_KERNELS", os.path.join(ROOT, "gpu-kernels", "tc_sm_90a"))
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(not os.path.isfile(os.path.join(KERNELS, "causal.json")),
                       reason=f"no causal.json under {KERNELS} (scripts/gpu/prepare.sh)"),
]


def reference(q, k, v):
    """float32 causal attention and its log-sum-exp (natural log)."""
    qf, kf, vf = q.float(), k.float(), v.float()
    s = (qf @ kf.transpose(-1, -2)) * q.shape[-1] ** -0.5
    S = q.shape[2]
    mask = torch.ones(S, S, dtype=torch.bool, device=q.device).tril()
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ vf, torch.logsumexp(s, -1)


@pytest.mark.parametrize("S", [1, 300, 1100])
def test_causal_through_dlpack(S):
    torch.manual_seed(S)
    B, H, D = 2, 16, 128  # examples/causal.json: bf16, 16 heads, D = 128
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = torch.full_like(q, float("nan"))
    lse = torch.full((B, H, S), float("nan"), device="cuda", dtype=torch.float32)
    kernel = attn.Kernel(os.path.join(KERNELS, "causal.json"))
    stream = torch.cuda.current_stream().cuda_stream
    # The dynamic scheduler's tile_counter (when the kernel has one) is left
    # to the runtime.
    kernel.launch_dlpack(q, k, v, out, lse, stream=stream)
    torch.cuda.synchronize()
    ref_o, ref_lse = reference(q, k, v)
    assert torch.isfinite(out).all() and torch.isfinite(lse).all()
    err = ((out.float() - ref_o).norm() / ref_o.norm()).item()
    assert err <= 1e-2, err
    assert torch.allclose(lse, ref_lse, rtol=1e-3, atol=1e-3), (lse - ref_lse).abs().max().item()


def test_dlpack_refusals():
    kernel = attn.Kernel(os.path.join(KERNELS, "causal.json"))
    q = torch.randn(1, 16, 64, 128, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(1, 16, 64, device="cuda", dtype=torch.float32)
    with pytest.raises(attn.AttnError) as e:
        kernel.launch_dlpack(q.cpu(), q, q, q, lse)
    assert e.value.status == "not on device", str(e.value)
    with pytest.raises(attn.AttnError) as e:
        kernel.launch_dlpack(q, q.half(), q, q, lse)
    assert e.value.status == "invalid argument"
    assert "key: expected bf16" in str(e.value), str(e.value)
