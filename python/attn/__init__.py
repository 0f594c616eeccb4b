"""Python access to attn kernels.

PyTorch ops (need torch; imported on first use, or with `import attn.ops`):

    import attn
    out = attn.attention(q, k, v, causal=True)        # q, k, v [B, H, S, D] CUDA tensors
    out = attn.linear_attention(q, k, v, feature_map="elu_plus_one", normalize=True)
    out = attn.gated_linear_attention(q, k, v, g)
    out, lse = attn.merge_attention([o1, o2], [lse1, lse2])  # parts over disjoint keys
    out = attn.attention_varlen(q, k, v, cu_seqlens, causal=True)  # FA's varlen layout
    attn.add_kernel_dir("gpu-kernels/torch/sm_90a")   # or $ATTN_KERNEL_PATH

registered as torch.ops.attn.attention / linear_attention /
gated_linear_attention, with fake implementations for torch.compile.

Without torch (ctypes over libattn_runtime.so):

    from attn import Kernel
    k = Kernel("kernels/causal.json")          # a manifest written by attn-compile
    k.launch(q, k_, v, out, lse)                # device tensors, any strides
                                                # with a unit last dimension

attn.spec builds the spec (and kernel name) of a call without torch;
attn.kernels finds or compiles kernels; attn.prebuild compiles a list of
configurations ahead of time.
"""
from .kernels import KernelNotFoundError, add_kernel_dir, kernel_dirs  # noqa: F401
from .runtime import AttnError, Kernel, load_library  # noqa: F401
from .spec import AttnArgumentError  # noqa: F401

_OPS = ("attention", "attention_varlen", "linear_attention", "gated_linear_attention",
        "merge_attention")


def __getattr__(name):
    if name in _OPS or name == "ops":
        import importlib
        try:
            ops = importlib.import_module(__name__ + ".ops")
        except ModuleNotFoundError as e:
            if e.name == "torch":
                raise ImportError(f"attn.{name} needs PyTorch, which is not installed") from e
            raise
        return ops if name == "ops" else getattr(ops, name)
    raise AttributeError(f"module 'attn' has no attribute {name!r}")
