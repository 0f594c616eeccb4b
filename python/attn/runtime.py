"""ctypes binding of include/attn/attn_runtime.h."""
import ctypes
import os

MAX_RANK = 8
STATUS = {0: "ok", 1: "invalid argument", 2: "not on device", 3: "CUDA error", 4: "I/O error"}
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2, "int32": 3, "uint8": 4}


class AttnError(RuntimeError):
    """A failed attn runtime call: `status` is the C status name."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = STATUS.get(status, str(status))


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("ndim", ctypes.c_int32),
                ("shape", ctypes.c_int64 * MAX_RANK), ("strides", ctypes.c_int64 * MAX_RANK),
                ("dtype", ctypes.c_int)]


_lib = None


def load_library(path=None):
    """Loads libattn_runtime.so: `path`, $ATTN_RUNTIME_LIB, or build/lib next to this package."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [path, os.environ.get("ATTN_RUNTIME_LIB"),
                  os.path.join(here, "..", "..", "build", "lib", "libattn_runtime.so"),
                  os.path.join(here, "..", "..", "build-rt", "lib", "libattn_runtime.so")]
    for c in candidates:
        if c and os.path.exists(c):
            lib = ctypes.CDLL(c)
            break
    else:
        raise AttnError(4, "libattn_runtime.so not found: build the project or set ATTN_RUNTIME_LIB")
    lib.attn_kernel_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.c_char_p, ctypes.c_size_t]
    lib.attn_kernel_load.restype = ctypes.c_int
    lib.attn_kernel_destroy.argtypes = [ctypes.c_void_p]
    lib.attn_kernel_num_arguments.argtypes = [ctypes.c_void_p]
    lib.attn_kernel_num_arguments.restype = ctypes.c_int
    lib.attn_kernel_argument_role.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.attn_kernel_argument_role.restype = ctypes.c_char_p
    lib.attn_kernel_argument_any_strides.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.attn_kernel_argument_any_strides.restype = ctypes.c_int
    lib.attn_kernel_launch.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Tensor), ctypes.c_int,
                                       ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.attn_kernel_launch.restype = ctypes.c_int
    lib.attn_kernel_launch_dlpack.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                              ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                              ctypes.c_size_t]
    lib.attn_kernel_launch_dlpack.restype = ctypes.c_int
    _lib = lib
    return lib


_capsule_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_valid.restype = ctypes.c_int
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_pointer.restype = ctypes.c_void_p
_DLPACK_CUDA = 2  # DLDeviceType kDLCUDA


def _dlpack_capsule(t, stream):
    """A DLPack capsule ("dltensor") for `t`: `t` itself if it is one, else
    t.__dlpack__(), with `stream` for CUDA tensors so the producer's pending
    work is ordered before the launch (the DLPack stream protocol)."""
    if type(t).__name__ == "PyCapsule":
        return t
    if not hasattr(t, "__dlpack__"):
        raise AttnError(1, f"{type(t).__name__} is neither a DLPack capsule nor has __dlpack__")
    on_cuda = hasattr(t, "__dlpack_device__") and t.__dlpack_device__()[0] == _DLPACK_CUDA
    return t.__dlpack__(stream=stream) if on_cuda and stream is not None else t.__dlpack__()


def _dtype_name(t):
    name = str(getattr(t, "dtype", ""))
    return name.split(".")[-1]


def _tensor(t):
    """Any object with data_ptr(), shape, stride() and a dtype (torch tensors)."""
    shape, strides = list(t.shape), list(t.stride())
    if len(shape) > MAX_RANK:
        raise AttnError(1, f"rank {len(shape)} is not supported (at most {MAX_RANK})")
    dtype = _dtype_name(t)
    if dtype not in DTYPES:
        raise AttnError(1, f"dtype {dtype} is not supported; expected one of {', '.join(DTYPES)}")
    c = _Tensor()
    c.data = t.data_ptr()
    c.ndim = len(shape)
    for i, (n, s) in enumerate(zip(shape, strides)):
        c.shape[i], c.strides[i] = n, s
    c.dtype = DTYPES[dtype]
    return c


class Kernel:
    """A kernel compiled by attn-compile, loaded from its manifest."""

    def __init__(self, manifest, library=None):
        self._lib = load_library(library)
        self._handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        status = self._lib.attn_kernel_load(os.fsencode(manifest), ctypes.byref(self._handle),
                                            err, len(err))
        if status:
            raise AttnError(status, err.value.decode())

    @property
    def roles(self):
        n = self._lib.attn_kernel_num_arguments(self._handle)
        return [self._lib.attn_kernel_argument_role(self._handle, i).decode() for i in range(n)]

    @property
    def any_strides(self):
        """The roles the kernel reads only through TMA tensor maps encoded at
        launch from the tensors' own strides: these take any strides such a map
        can describe (unit last stride, the others positive multiples of 16
        bytes, 16-byte aligned data), not only the spec layout's."""
        n = self._lib.attn_kernel_num_arguments(self._handle)
        return frozenset(self._lib.attn_kernel_argument_role(self._handle, i).decode()
                         for i in range(n)
                         if self._lib.attn_kernel_argument_any_strides(self._handle, i))

    def launch(self, *tensors, stream=None):
        """Launches on `stream` (a CUstream handle as int, or None for the default)."""
        args = (_Tensor * max(len(tensors), 1))(*[_tensor(t) for t in tensors])
        err = ctypes.create_string_buffer(1024)
        status = self._lib.attn_kernel_launch(self._handle, args, len(tensors), stream, err, len(err))
        if status:
            raise AttnError(status, err.value.decode())

    def launch_dlpack(self, *tensors, stream=None):
        """launch() for DLPack tensors (JAX, CuPy, NumPy, torch: anything with
        __dlpack__, or unconsumed "dltensor" capsules), in roles order. The
        capsules are borrowed for the call, not consumed: their producers keep
        the memory."""
        capsules = [_dlpack_capsule(t, stream) for t in tensors]
        pointers = (ctypes.c_void_p * max(len(capsules), 1))()
        for i, c in enumerate(capsules):
            if not _capsule_valid(c, b"dltensor"):
                raise AttnError(1, f"argument {i}: expected an unconsumed DLPack capsule named "
                                   "'dltensor' (a versioned or used one is not accepted)")
            # DLManagedTensor begins with its DLTensor.
            pointers[i] = _capsule_pointer(c, b"dltensor")
        err = ctypes.create_string_buffer(1024)
        status = self._lib.attn_kernel_launch_dlpack(self._handle, pointers, len(capsules), stream,
                                                     err, len(err))
        if status:
            raise AttnError(status, err.value.decode())

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.attn_kernel_destroy(self._handle)
            self._handle = None
