"""Python access to attn kernels (ctypes over libattn_runtime.so).

    from attn import Kernel
    k = Kernel("kernels/causal.json")          # a manifest written by attn-compile
    k.launch(q, k_, v, out, lse)                # torch CUDA tensors, any strides
                                                # with a unit last dimension

The PyTorch custom ops (torch.library, fake implementations for
torch.compile) will sit on top of this; see README "Known gaps".
"""
from .runtime import AttnError, Kernel, load_library  # noqa: F401
