//===- CudaRuntime.cpp - load and launch attn kernels (driver API) --------===//

#include "attn/Runtime/CudaRuntime.h"
#include "attn/Runtime/KernelArgs.h"

#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace attn {
namespace {

/// The driver entry points we use, resolved from libcuda.so.1 at run time.
struct Driver {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDeviceGet) deviceGet = nullptr;
  decltype(&::cuDeviceGetAttribute) deviceGetAttribute = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain = nullptr;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent = nullptr;
  decltype(&::cuCtxSynchronize) ctxSynchronize = nullptr;
  decltype(&::cuModuleLoadDataEx) moduleLoadDataEx = nullptr;
  decltype(&::cuModuleGetFunction) moduleGetFunction = nullptr;
  decltype(&::cuModuleUnload) moduleUnload = nullptr;
  decltype(&::cuFuncSetAttribute) funcSetAttribute = nullptr;
  decltype(&::cuMemAlloc) memAlloc = nullptr;
  decltype(&::cuMemFree) memFree = nullptr;
  decltype(&::cuMemcpyHtoD) memcpyHtoD = nullptr;
  decltype(&::cuMemcpyDtoH) memcpyDtoH = nullptr;
  decltype(&::cuMemsetD32Async) memsetD32Async = nullptr;
  decltype(&::cuLaunchKernel) launchKernel = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
  decltype(&::cuEventSynchronize) eventSynchronize = nullptr;
  decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
  decltype(&::cuEventDestroy) eventDestroy = nullptr;
  decltype(&::cuGetErrorName) getErrorName = nullptr;
  decltype(&::cuGetErrorString) getErrorString = nullptr;
  decltype(&::cuPointerGetAttribute) pointerGetAttribute = nullptr;
  decltype(&::cuTensorMapEncodeTiled) tensorMapEncodeTiled = nullptr;
  decltype(&::cuDeviceGetName) deviceGetName = nullptr;
  decltype(&::cuEventQuery) eventQuery = nullptr;
  std::string loadError;

  static Driver &get() {
    static Driver driver = load();
    return driver;
  }

private:
  static Driver load() {
    Driver d;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      d.loadError = "the CUDA driver (libcuda.so.1) could not be loaded: this machine "
                    "has no NVIDIA driver";
      return d;
    }
    auto sym = [&](auto &fn, const char *name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && d.loadError.empty())
        d.loadError = std::string("the CUDA driver lacks ") + name;
    };
    sym(d.init, "cuInit");
    sym(d.deviceGet, "cuDeviceGet");
    sym(d.deviceGetAttribute, "cuDeviceGetAttribute");
    sym(d.primaryCtxRetain, "cuDevicePrimaryCtxRetain");
    sym(d.ctxSetCurrent, "cuCtxSetCurrent");
    sym(d.ctxSynchronize, "cuCtxSynchronize");
    sym(d.moduleLoadDataEx, "cuModuleLoadDataEx");
    sym(d.moduleGetFunction, "cuModuleGetFunction");
    sym(d.moduleUnload, "cuModuleUnload");
    sym(d.funcSetAttribute, "cuFuncSetAttribute");
    sym(d.memAlloc, "cuMemAlloc_v2");
    sym(d.memFree, "cuMemFree_v2");
    sym(d.memcpyHtoD, "cuMemcpyHtoD_v2");
    sym(d.memcpyDtoH, "cuMemcpyDtoH_v2");
    sym(d.memsetD32Async, "cuMemsetD32Async");
    sym(d.launchKernel, "cuLaunchKernel");
    sym(d.eventCreate, "cuEventCreate");
    sym(d.eventRecord, "cuEventRecord");
    sym(d.eventSynchronize, "cuEventSynchronize");
    sym(d.eventElapsedTime, "cuEventElapsedTime_v2");
    sym(d.eventDestroy, "cuEventDestroy_v2");
    sym(d.getErrorName, "cuGetErrorName");
    sym(d.getErrorString, "cuGetErrorString");
    sym(d.pointerGetAttribute, "cuPointerGetAttribute");
    sym(d.tensorMapEncodeTiled, "cuTensorMapEncodeTiled");
    sym(d.deviceGetName, "cuDeviceGetName");
    sym(d.eventQuery, "cuEventQuery");
    return d;
  }
};

/// Turns a failed driver call into a message naming it.
struct Checker {
  Driver &d;
  std::string &error;
  bool operator()(CUresult r, const char *what) {
    if (r == CUDA_SUCCESS)
      return true;
    const char *name = nullptr, *text = nullptr;
    d.getErrorName(r, &name);
    d.getErrorString(r, &text);
    error = std::string(what) + " failed: " + (name ? name : "?") + " (" +
            (text ? text : "unknown error") + ")";
    return false;
  }
};

/// Frees device buffers and unloads the module whatever path we leave by.
struct DeviceResources {
  Driver &d;
  CUmodule module = nullptr;
  std::vector<CUdeviceptr> buffers;
  ~DeviceResources() {
    for (CUdeviceptr p : buffers)
      d.memFree(p);
    if (module)
      d.moduleUnload(module);
  }
};

/// A device tensor as the launch sees it: its address, logical shape and
/// element strides, and the element size.
struct DeviceTensor {
  std::string role;
  CUdeviceptr data = 0;
  std::vector<int64_t> shape, strides;
  size_t elementBytes = 0;
  CUtensorMapDataType type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
};

CUtensorMapDataType tensorMapType(BufferElem e) {
  switch (e) {
  case BufferElem::F16:
    return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  case BufferElem::BF16:
    return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  case BufferElem::I32:
    return CU_TENSOR_MAP_DATA_TYPE_INT32;
  case BufferElem::I8:
    return CU_TENSOR_MAP_DATA_TYPE_UINT8;
  case BufferElem::F32:
    break;
  }
  return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
}

/// Encodes the TMA tensor map of `t` for `spec`: a 4-d tiled map over
/// [B, H, S, D] (innermost first: D, S, H, B), boxes of box_cols x box_rows,
/// zero fill past the ends (partial tiles read zeros, never other rows).
bool encodeTensorMap(Driver &d, const std::string &kernel, const TensorMapArgument &spec,
                     const DeviceTensor &t, CUtensorMap &map, std::string &error) {
  TensorMapGeometry g;
  if (!describeTensorMap(kernel, t.role, spec, uint64_t(t.data), t.shape, t.strides,
                         t.elementBytes, g, error))
    return false;
  cuuint64_t dims[4], strides[3];
  cuuint32_t box[4], elementStrides[4] = {1, 1, 1, 1};
  for (int i = 0; i < 4; ++i) {
    dims[i] = g.dims[i];
    box[i] = g.box[i];
  }
  for (int i = 0; i < 3; ++i)
    strides[i] = g.strides[i];
  CUtensorMapSwizzle swizzle = spec.swizzle == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
                               : spec.swizzle == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                               : spec.swizzle == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                    : CU_TENSOR_MAP_SWIZZLE_NONE;
  Checker check{d, error};
  if (!check(d.tensorMapEncodeTiled(&map, t.type, 4, reinterpret_cast<void *>(t.data), dims,
                                    strides, box, elementStrides,
                                    CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
             "cuTensorMapEncodeTiled")) {
    error = kernel + ": " + t.role + ": " + error;
    return false;
  }
  return true;
}

} // namespace

/// Device copies of encoded tensor maps, keyed by their bytes: repeated
/// launches on the same tensors upload nothing, and launches on different
/// tensors (or streams) never share a slot. Past kMaxSlots the pool waits
/// for the device and starts over.
class TensorMapPool {
public:
  ~TensorMapPool() { clear(); }

  bool get(Driver &d, const CUtensorMap &map, CUdeviceptr &out, std::string &error) {
    std::lock_guard<std::mutex> lock(mutex);
    std::string key(reinterpret_cast<const char *>(&map), sizeof(map));
    auto it = slots.find(key);
    if (it != slots.end()) {
      out = it->second;
      return true;
    }
    Checker check{d, error};
    if (slots.size() >= kMaxSlots) {
      if (!check(d.ctxSynchronize(), "cuCtxSynchronize"))
        return false;
      clear();
    }
    if (!check(d.memAlloc(&out, sizeof(map)), "cuMemAlloc (tensor map)"))
      return false;
    if (!check(d.memcpyHtoD(out, &map, sizeof(map)), "cuMemcpyHtoD (tensor map)")) {
      d.memFree(out);
      return false;
    }
    slots.emplace(std::move(key), out);
    return true;
  }

private:
  static constexpr size_t kMaxSlots = 4096;
  void clear() {
    for (auto &[key, ptr] : slots)
      Driver::get().memFree(ptr);
    slots.clear();
  }
  std::map<std::string, CUdeviceptr> slots;
  std::mutex mutex;
};

namespace {

/// The kernel's parameter words for `args` (in ABI order): one memref
/// descriptor per tensor, {allocated, aligned, offset, sizes..., strides...},
/// then one device pointer per manifest tensor map.
bool packArguments(Driver &d, const KernelManifest &m, const std::vector<DeviceTensor> &args,
                   TensorMapPool &pool, std::vector<int64_t> &words, std::string &error) {
  for (const DeviceTensor &t : args) {
    words.push_back(int64_t(t.data));
    words.push_back(int64_t(t.data));
    words.push_back(0);
    words.insert(words.end(), t.shape.begin(), t.shape.end());
    words.insert(words.end(), t.strides.begin(), t.strides.end());
  }
  for (const TensorMapArgument &spec : m.tensorMaps) {
    if (spec.argument >= int64_t(args.size())) {
      error = m.name + ": tensor map argument " + std::to_string(spec.argument) +
              " is out of range";
      return false;
    }
    alignas(64) CUtensorMap map;
    CUdeviceptr ptr;
    if (!encodeTensorMap(d, m.name, spec, args[spec.argument], map, error) ||
        !pool.get(d, map, ptr, error))
      return false;
    words.push_back(int64_t(ptr));
  }
  return true;
}

} // namespace

bool describeTensorMap(const std::string &kernel, const std::string &role,
                       const TensorMapArgument &spec, uint64_t address,
                       const std::vector<int64_t> &shape, const std::vector<int64_t> &strides,
                       size_t elementBytes, TensorMapGeometry &g, std::string &error) {
  std::string where = kernel + ": " + role + ": ";
  if (shape.size() != 4 || strides.size() != 4) {
    error = where + "a TMA tensor map needs a rank-4 tensor";
    return false;
  }
  if (strides[3] != 1) {
    error = where + "the last dimension must be contiguous (stride 1) for TMA";
    return false;
  }
  if (address % 16 != 0) {
    error = where + "the data pointer must be 16-byte aligned for TMA";
    return false;
  }
  for (int i = 0; i < 4; ++i)
    g.dims[i] = uint64_t(shape[3 - i]);
  constexpr int64_t kMaxStrideBytes = int64_t(1) << 40; // cuTensorMapEncodeTiled's bound
  for (int i = 0; i < 3; ++i) {
    // A caller's stride may be anything (any_strides arguments): compared
    // before it is scaled, so that no product overflows.
    int64_t stride = strides[2 - i];
    bool inRange = stride > 0 && stride < kMaxStrideBytes / int64_t(elementBytes);
    int64_t bytes = inRange ? stride * int64_t(elementBytes) : 0;
    // A dimension of extent 1 is never stepped over: any stride will do.
    if (shape[2 - i] == 1 && (!inRange || bytes % 16 != 0)) {
      bytes = (shape[3] * int64_t(elementBytes) + 15) / 16 * 16;
      inRange = true;
    }
    if (!inRange || bytes % 16 != 0) {
      static const char *const names[] = {"B", "H", "S"};
      error = where + "stride of dimension " + std::to_string(2 - i) + " (" + names[2 - i] +
              ") is " +
              (stride >= 0 && stride < kMaxStrideBytes
                   ? std::to_string(stride * int64_t(elementBytes)) + " bytes"
                   : std::to_string(stride) + " elements") +
              "; TMA needs a positive multiple of 16 below 2^40";
      return false;
    }
    g.strides[i] = uint64_t(bytes);
  }
  g.box[0] = uint32_t(spec.boxCols);
  g.box[1] = uint32_t(spec.boxRows);
  g.box[2] = g.box[3] = 1;
  return true;
}

bool runCudaKernel(const KernelManifest &m, const ExecInputs &in, ExecOutputs &out,
                   std::string &error, const CudaRunOptions &options) {
  // A longer sequence's kernel (the manifest's dispatch), as attn_kernel_launch.
  if (int chosen = m.selectVariant(in.Sk); chosen >= 0) {
    KernelManifest variant;
    if (!readDispatchVariant(m, size_t(chosen), variant, error))
      return false;
    return runCudaKernel(variant, in, out, error, options);
  }
  Driver &d = Driver::get();
  if (!d.loadError.empty()) {
    error = d.loadError;
    return false;
  }
  Checker check{d, error};
  CUdevice device;
  CUcontext context;
  if (!check(d.init(0), "cuInit") ||
      !check(d.deviceGet(&device, options.device), "cuDeviceGet") ||
      !check(d.primaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain") ||
      !check(d.ctxSetCurrent(context), "cuCtxSetCurrent"))
    return false;

  // sm_90a code runs only on compute capability 9.0; sm_80 PTX runs on >= 8.0.
  int major = 0, minor = 0;
  if (!check(d.deviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
             "cuDeviceGetAttribute") ||
      !check(d.deviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
             "cuDeviceGetAttribute"))
    return false;
  int multiprocessors = 0;
  if (!check(d.deviceGetAttribute(&multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                  device),
             "cuDeviceGetAttribute"))
    return false;
  std::string deviceChip = "sm_" + std::to_string(major) + std::to_string(minor);
  if (m.chip == "sm_90a" && deviceChip != "sm_90") {
    error = m.name + ": the kernel was compiled for sm_90a, the device is " + deviceChip;
    return false;
  }

  DeviceResources res{d};
  std::string image;
  bool haveCubin = !m.cubinFile.empty() && readWholeFile(m.directory + "/" + m.cubinFile, image);
  if (!haveCubin && !readWholeFile(m.directory + "/" + m.ptxFile, image)) {
    error = m.directory + "/" + m.ptxFile + ": cannot read the kernel's PTX";
    return false;
  }
  image.push_back('\0');
  char log[8192] = {0};
  CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[] = {log, reinterpret_cast<void *>(sizeof(log))};
  if (!check(d.moduleLoadDataEx(&res.module, image.data(), 2, opts, vals),
             "cuModuleLoadDataEx")) {
    error += log[0] ? std::string(": ") + log : "";
    return false;
  }
  CUfunction fn;
  if (!check(d.moduleGetFunction(&fn, res.module, m.entry.c_str()), "cuModuleGetFunction"))
    return false;
  if (m.dynamicSharedMemory > 48 * 1024 &&
      !check(d.funcSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                int(m.dynamicSharedMemory)),
             "cuFuncSetAttribute"))
    return false;

  bool withLse = std::find(m.argumentRoles.begin(), m.argumentRoles.end(), "lse") !=
                 m.argumentRoles.end();
  std::vector<HostBuffer> buffers = bindArguments(*m.spec, in, withLse);
  std::vector<DeviceTensor> tensors;
  for (HostBuffer &buf : buffers) {
    CUdeviceptr ptr;
    if (!check(d.memAlloc(&ptr, buf.bytes.size()), "cuMemAlloc"))
      return false;
    res.buffers.push_back(ptr);
    if (!check(d.memcpyHtoD(ptr, buf.bytes.data(), buf.bytes.size()), "cuMemcpyHtoD"))
      return false;
    tensors.push_back({buf.role, ptr, buf.shape, buf.strides, bufferElemSize(buf.elem),
                       tensorMapType(buf.elem)});
  }
  // The dynamic scheduler's tile counter: zeroed before every launch.
  CUdeviceptr tileCounter = 0;
  if (m.hasTileCounter()) {
    if (!check(d.memAlloc(&tileCounter, 16), "cuMemAlloc (tile counter)"))
      return false;
    res.buffers.push_back(tileCounter);
    tensors.push_back({kTileCounterRole, tileCounter, {1}, {1}, 4, CU_TENSOR_MAP_DATA_TYPE_INT32});
  }
  std::vector<int64_t> words;
  TensorMapPool maps;
  if (!packArguments(d, m, tensors, maps, words, error))
    return false;
  std::vector<void *> params;
  for (int64_t &w : words)
    params.push_back(&w);

  std::array<int64_t, 3> grid = m.launchGridFor(in, multiprocessors);
  auto launch = [&]() {
    if (tileCounter &&
        !check(d.memsetD32Async(tileCounter, 0, 1, /*stream=*/nullptr), "cuMemsetD32Async"))
      return false;
    return check(d.launchKernel(fn, unsigned(grid[0]), unsigned(grid[1]), unsigned(grid[2]),
                                unsigned(m.block[0]), unsigned(m.block[1]),
                                unsigned(m.block[2]), unsigned(m.dynamicSharedMemory),
                                /*stream=*/nullptr, params.data(), nullptr),
                 "cuLaunchKernel");
  };
  if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0) {
    error = m.name + ": empty grid";
    return false;
  }
  if (!launch() || !check(d.ctxSynchronize(), "the kernel (cuCtxSynchronize)"))
    return false;
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].isOutput &&
        !check(d.memcpyDtoH(buffers[i].bytes.data(), res.buffers[i], buffers[i].bytes.size()),
               "cuMemcpyDtoH"))
      return false;
  readOutputs(*m.spec, buffers, out);

  if (options.timingRepeats > 0 && options.medianMilliseconds) {
    std::vector<float> times;
    CUevent start, stop;
    if (!check(d.eventCreate(&start, 0), "cuEventCreate") ||
        !check(d.eventCreate(&stop, 0), "cuEventCreate"))
      return false;
    for (int i = 0; i < options.timingRepeats + 3; ++i) {
      float ms = 0;
      if (!check(d.eventRecord(start, nullptr), "cuEventRecord") || !launch() ||
          !check(d.eventRecord(stop, nullptr), "cuEventRecord") ||
          !check(d.eventSynchronize(stop), "cuEventSynchronize") ||
          !check(d.eventElapsedTime(&ms, start, stop), "cuEventElapsedTime"))
        return false;
      if (i >= 3) // warm-up launches are not timed
        times.push_back(ms);
    }
    d.eventDestroy(start);
    d.eventDestroy(stop);
    std::sort(times.begin(), times.end());
    *options.medianMilliseconds = times[times.size() / 2];
  }
  return true;
}

} // namespace attn

//===----------------------------------------------------------------------===//
// C API (attn_runtime.h)
//===----------------------------------------------------------------------===//

#include "attn/attn_runtime.h"
#include "attn/Runtime/CStatus.h"

#include <cstring>

struct attn_kernel {
  attn::KernelManifest manifest;
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  int multiprocessors = 0; ///< of the device the module was loaded on
  attn::TensorMapPool tensorMaps;
  /// The dynamic scheduler's tile counters for launches that pass none, one
  /// per stream (launches on different streams may run at once; on one
  /// stream, the memset before each launch is in stream order).
  std::map<CUstream, CUdeviceptr> tileCounters;
  std::mutex tileCountersMutex;
  /// The manifest's `dispatch` variants (kernels for longer sequences), in
  /// its order; each an ordinary kernel of its own.
  std::vector<std::unique_ptr<attn_kernel>> variants;
};

namespace attn {
namespace {


std::string shapeString(const attn_tensor &t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i)
    s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

std::string expectedString(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + (dims[i] < 0 ? std::string("1 or B/Hq") : std::to_string(dims[i]));
  return s + "]";
}

/// A tensor's dtype as the integer a C caller stored: reading the enum
/// itself is undefined in C++ when that value is no enumerator's (garbage in
/// an uninitialized struct; UBSan flagged it under the argument-check
/// property test).
int32_t dtypeCode(const attn_tensor &t) {
  static_assert(sizeof(t.dtype) == sizeof(int32_t), "attn_dtype is an int");
  int32_t code;
  std::memcpy(&code, &t.dtype, sizeof code);
  return code;
}

std::string dtypeName(int32_t d) {
  switch (d) {
  case ATTN_F32:
    return "f32";
  case ATTN_F16:
    return "f16";
  case ATTN_BF16:
    return "bf16";
  case ATTN_I32:
    return "i32";
  case ATTN_U8:
    return "u8";
  }
  return "unknown dtype " + std::to_string(d);
}

BufferElem bufferElemOf(attn_dtype d) {
  switch (d) {
  case ATTN_F16:
    return BufferElem::F16;
  case ATTN_BF16:
    return BufferElem::BF16;
  case ATTN_I32:
    return BufferElem::I32;
  case ATTN_U8:
    return BufferElem::I8;
  case ATTN_F32:
    break;
  }
  return BufferElem::F32;
}

attn_dtype dtypeOf(ElementType t) {
  return t == ElementType::F16 ? ATTN_F16 : t == ElementType::BF16 ? ATTN_BF16 : ATTN_F32;
}

} // namespace

/// Checks every argument against the spec and binds the problem sizes.
/// Needs no GPU; messages name the argument, what was expected and found.
/// More elements than an H200's 141 GB could hold even as bytes.
constexpr int64_t kMaxTensorElements = int64_t(1) << 40;

bool validateLaunchArguments(const KernelManifest &m, const attn_tensor *args, int numArgs,
                             ExecInputs &sizes, std::string &error) {
  const Spec &spec = *m.spec;
  const std::vector<std::string> &roles = m.argumentRoles;
  // The dynamic scheduler's tile counter (the last role) may be left out:
  // the launch then uses one of its own.
  bool counterOmitted = m.hasTileCounter() && numArgs == int(roles.size()) - 1;
  if (numArgs != int(roles.size()) && !counterOmitted) {
    error = m.name + ": expected " + std::to_string(roles.size()) + " tensors (";
    for (size_t i = 0; i < roles.size(); ++i)
      error += (i ? ", " : "") + roles[i];
    error += "), got " + std::to_string(numArgs);
    if (m.hasTileCounter())
      error += " (the last, tile_counter, may be left out)";
    return false;
  }
  for (int i = 0; i < numArgs; ++i)
    if (args[i].ndim < 1 || args[i].ndim > ATTN_MAX_RANK || !args[i].data) {
      error = m.name + ": " + roles[i] + ": expected a tensor with data and rank 1.." +
              std::to_string(ATTN_MAX_RANK) + ", got rank " + std::to_string(args[i].ndim);
      return false;
    }
  // Sizes no device memory could hold are refused here, before any size or
  // stride arithmetic on them (2^62 elements overflowed the layout's
  // strides: UBSan, under the argument-check property test).
  for (int i = 0; i < numArgs; ++i) {
    int64_t elements = 1;
    for (int d = 0; d < args[i].ndim; ++d)
      if (args[i].shape[d] < 0 || __builtin_mul_overflow(elements, args[i].shape[d], &elements) ||
          elements > kMaxTensorElements) {
        error = m.name + ": " + roles[i] + ": shape " + shapeString(args[i]) +
                " is negative or larger than any device memory (at most 2^40 elements)";
        return false;
      }
  }
  const attn_tensor &q = args[0], &k = args[1], &v = args[2];
  for (int i = 0; i < 3; ++i)
    if (args[i].ndim != 4) {
      error = m.name + ": " + roles[i] + ": expected rank 4 [B, H, S, D], got " +
              shapeString(args[i]);
      return false;
    }
  sizes.B = q.shape[0];
  sizes.Hq = q.shape[1];
  sizes.Sq = q.shape[2];
  sizes.Dqk = q.shape[3];
  sizes.Hkv = k.shape[1];
  sizes.Sk = k.shape[2];
  sizes.Dv = v.shape[3];
  bool linear = spec.kind != VariantKind::Attention;
  auto staticOk = [](int64_t specDim, int64_t actual) { return specDim == kDynamic || specDim == actual; };
  if (!staticOk(spec.batch, sizes.B) || !staticOk(spec.headsQ, sizes.Hq) ||
      !staticOk(spec.headsKV, sizes.Hkv) || sizes.Dqk != spec.headDim ||
      sizes.Dv != spec.headDimV || (!linear && !staticOk(spec.seqQ, sizes.Sq)) ||
      !staticOk(spec.seqK, sizes.Sk)) {
    error = m.name + ": the sizes of query/key/value (B=" + std::to_string(sizes.B) +
            ", Hq=" + std::to_string(sizes.Hq) + ", Hkv=" + std::to_string(sizes.Hkv) +
            ", Dqk=" + std::to_string(sizes.Dqk) + ", Dv=" + std::to_string(sizes.Dv) +
            ") do not match the spec the kernel was compiled from";
    return false;
  }
  if (sizes.Hkv < 1 || sizes.Hq % sizes.Hkv != 0) {
    error = m.name + ": query heads (" + std::to_string(sizes.Hq) +
            ") must be a multiple of key/value heads (" + std::to_string(sizes.Hkv) + ")";
    return false;
  }
  if (linear && (sizes.Hkv != sizes.Hq || sizes.Sk != sizes.Sq)) {
    error = m.name + ": linear attention needs equal heads and lengths for query and key";
    return false;
  }
  int64_t B = sizes.B, Hq = sizes.Hq, Hkv = sizes.Hkv, Sq = sizes.Sq, Sk = sizes.Sk;
  int64_t Dqk = sizes.Dqk, Dv = sizes.Dv;
  attn_dtype et = dtypeOf(spec.dtype);
  for (int i = 0; i < numArgs; ++i) {
    const std::string &role = roles[i];
    std::vector<int64_t> expected;
    attn_dtype dtype = ATTN_F32;
    bool headOperand = false;
    if (role == "query" || role == "out") {
      expected = {B, Hq, Sq, role == "out" ? Dv : Dqk};
      dtype = et;
      headOperand = true;
    } else if (role == "key" || role == "value") {
      expected = {B, Hkv, Sk, role == "key" ? Dqk : Dv};
      dtype = et;
      headOperand = true;
    } else if (role == "lse") {
      expected = {B, Hq, Sq};
    } else if (role == "block_mask") {
      auto [bq, bk] = *spec.blockSparse;
      expected = {-1, -1, (Sq + bq - 1) / bq, (Sk + bk - 1) / bk};
      dtype = ATTN_U8;
    } else if (role == "q_doc_ids" || role == "kv_doc_ids") {
      expected = {B, role == "q_doc_ids" ? Sq : Sk};
      dtype = ATTN_I32;
    } else if (role == "alibi_slopes") {
      expected = spec.alibi == AlibiShape::PerHead ? std::vector<int64_t>{Hq}
                                                   : std::vector<int64_t>{B, Hq};
    } else if (role.rfind("tensor:", 0) == 0) {
      for (const TensorDecl &t : spec.tensors)
        if ("tensor:" + t.name == role) {
          dtype = t.elementType == TensorElementType::F32 ? ATTN_F32 : ATTN_I32;
          for (int64_t dim : t.shape)
            expected.push_back(dim == kDynamic ? args[i].shape[expected.size()] : dim);
        }
    } else if (role == "gates") {
      expected = spec.gate == GateKindSpec::HeadConstant ? std::vector<int64_t>{Hq}
                 : spec.gate == GateKindSpec::Scalar     ? std::vector<int64_t>{B, Hq, Sq}
                                                         : std::vector<int64_t>{B, Hq, Sq, Dqk};
    } else if (role == "initial_state" || role == "final_state") {
      expected = {B, Hq, Dqk, Dv};
    } else if (role == kTileCounterRole) {
      expected = {1};
      dtype = ATTN_I32;
    }
    bool ok = dtypeCode(args[i]) == dtype && args[i].ndim == int(expected.size());
    for (size_t d = 0; ok && d < expected.size(); ++d) {
      int64_t e = expected[d];
      int64_t full = d == 0 ? B : Hq;
      ok = e < 0 ? (args[i].shape[d] == 1 || args[i].shape[d] == full) : args[i].shape[d] == e;
    }
    if (!ok) {
      error = m.name + ": " + role + ": expected " + dtypeName(dtype) + " " +
              expectedString(expected) + ", got " + dtypeName(dtypeCode(args[i])) + " " +
              shapeString(args[i]);
      return false;
    }
    if (headOperand && args[i].strides[3] != 1) {
      error = m.name + ": " + role + ": the head dimension must be contiguous (stride 1), "
              "got stride " + std::to_string(args[i].strides[3]);
      return false;
    }
    std::vector<int64_t> shape(args[i].shape, args[i].shape + args[i].ndim);
    // An argument the kernel reads only through its tensor map takes the
    // tensor's own strides (the map is encoded from them at launch): any a
    // map can describe, checked here as the launch will encode them.
    auto map = std::find_if(m.tensorMaps.begin(), m.tensorMaps.end(),
                            [&](const TensorMapArgument &t) { return t.argument == i; });
    if (map != m.tensorMaps.end() && map->anyStrides) {
      TensorMapGeometry geometry;
      if (!describeTensorMap(m.name, role, *map, uint64_t(reinterpret_cast<uintptr_t>(args[i].data)),
                             shape, std::vector<int64_t>(args[i].strides, args[i].strides + args[i].ndim),
                             bufferElemSize(bufferElemOf(dtype)), geometry, error))
        return false;
      continue;
    }
    // The kernel computes addresses from the spec's layout: other strides
    // would read the wrong elements, so they are refused, never guessed.
    std::vector<int64_t> want = expectedStrides(spec, role, shape);
    for (size_t d = 0; d < want.size(); ++d)
      if (shape[d] > 1 && args[i].strides[d] != want[d]) {
        auto list = [](const int64_t *v, size_t n) {
          std::string s = "[";
          for (size_t j = 0; j < n; ++j)
            s += (j ? ", " : "") + std::to_string(v[j]);
          return s + "]";
        };
        error = m.name + ": " + role + ": strides " + list(args[i].strides, want.size()) +
                " do not match the kernel's " +
                (spec.layout == Layout::BSHD ? "bshd" : "bhsd") + " layout " +
                list(want.data(), want.size()) +
                (headOperand ? " (pass a tensor in that layout, or compile the spec with "
                               "the layout the tensors have)"
                             : " (pass a contiguous tensor)");
        return false;
      }
  }
  return true;
}

} // namespace attn

extern "C" {

attn_status attn_kernel_load(const char *manifestPath, attn_kernel **kernel, char *err,
                             size_t errLen) {
  if (!manifestPath || !kernel)
    return attn::reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                        "attn_kernel_load: null manifest path or output pointer");
  auto k = std::make_unique<attn_kernel>();
  std::string error;
  if (!attn::readManifest(manifestPath, k->manifest, error))
    return attn::reportStatus(err, errLen, ATTN_ERROR_IO, error);
  for (size_t i = 0; i < k->manifest.dispatch.size(); ++i) {
    auto variant = std::make_unique<attn_kernel>();
    if (!attn::readDispatchVariant(k->manifest, i, variant->manifest, error))
      return attn::reportStatus(err, errLen, ATTN_ERROR_IO, std::string(manifestPath) + ": " + error);
    k->variants.push_back(std::move(variant));
  }
  *kernel = k.release();
  return ATTN_OK;
}

void attn_kernel_destroy(attn_kernel *kernel) {
  if (!kernel)
    return;
  for (auto &variant : kernel->variants)
    attn_kernel_destroy(variant.release());
  if (kernel->module)
    attn::Driver::get().moduleUnload(kernel->module);
  for (auto &[stream, counter] : kernel->tileCounters)
    attn::Driver::get().memFree(counter);
  delete kernel;
}

int attn_kernel_num_arguments(const attn_kernel *kernel) {
  return kernel ? int(kernel->manifest.argumentRoles.size()) : 0;
}

const char *attn_kernel_argument_role(const attn_kernel *kernel, int index) {
  if (!kernel || index < 0 || index >= int(kernel->manifest.argumentRoles.size()))
    return nullptr;
  return kernel->manifest.argumentRoles[index].c_str();
}

int attn_kernel_argument_any_strides(const attn_kernel *kernel, int index) {
  if (!kernel || index < 0 || index >= int(kernel->manifest.argumentRoles.size()))
    return 0;
  auto anyStrides = [index](const attn::KernelManifest &m) {
    for (const attn::TensorMapArgument &t : m.tensorMaps)
      if (t.argument == index)
        return t.anyStrides;
    return false;
  };
  if (!anyStrides(kernel->manifest))
    return 0;
  for (const auto &variant : kernel->variants)
    if (!anyStrides(variant->manifest))
      return 0;
  return 1;
}

attn_status attn_kernel_launch(attn_kernel *kernel, const attn_tensor *args, int numArgs,
                               void *stream, char *err, size_t errLen) {
  using namespace attn;
  if (!kernel || (!args && numArgs > 0))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                  "attn_kernel_launch: null kernel or argument array");
  const KernelManifest &m = kernel->manifest;
  ExecInputs sizes;
  std::string error;
  if (!validateLaunchArguments(m, args, numArgs, sizes, error))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, error);
  // A longer sequence's kernel (the manifest's dispatch): the same arguments,
  // less a tile counter the variant has no role for (it keeps its own).
  if (int chosen = m.selectVariant(sizes.Sk); chosen >= 0) {
    attn_kernel *variant = kernel->variants[chosen].get();
    int bound = numArgs;
    if (m.hasTileCounter() && numArgs == int(m.argumentRoles.size()) &&
        !variant->manifest.hasTileCounter())
      --bound;
    return attn_kernel_launch(variant, args, bound, stream, err, errLen);
  }
  Driver &d = Driver::get();
  if (!d.loadError.empty())
    return reportStatus(err, errLen, ATTN_ERROR_CUDA, d.loadError);
  Checker check{d, error};
  if (!check(d.init(0), "cuInit"))
    return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
  for (int i = 0; i < numArgs; ++i) {
    unsigned memoryType = 0;
    CUresult r = d.pointerGetAttribute(&memoryType, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                       CUdeviceptr(args[i].data));
    if (r != CUDA_SUCCESS || memoryType != CU_MEMORYTYPE_DEVICE)
      return reportStatus(err, errLen, ATTN_ERROR_NOT_ON_DEVICE,
                    m.name + ": " + m.argumentRoles[i] + ": the data is not CUDA device memory");
  }
  if (!kernel->function) {
    CUdevice device;
    CUcontext context;
    std::string image;
    bool haveCubin = !m.cubinFile.empty() && readWholeFile(m.directory + "/" + m.cubinFile, image);
    if (!haveCubin && !readWholeFile(m.directory + "/" + m.ptxFile, image))
      return reportStatus(err, errLen, ATTN_ERROR_IO, m.directory + "/" + m.ptxFile + ": unreadable");
    image.push_back('\0');
    if (!check(d.deviceGet(&device, 0), "cuDeviceGet") ||
        !check(d.primaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain") ||
        !check(d.ctxSetCurrent(context), "cuCtxSetCurrent") ||
        !check(d.moduleLoadDataEx(&kernel->module, image.data(), 0, nullptr, nullptr),
               "cuModuleLoadDataEx") ||
        !check(d.moduleGetFunction(&kernel->function, kernel->module, m.entry.c_str()),
               "cuModuleGetFunction") ||
        !check(d.deviceGetAttribute(&kernel->multiprocessors,
                                    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
               "cuDeviceGetAttribute"))
      return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
    if (m.dynamicSharedMemory > 48 * 1024 &&
        !check(d.funcSetAttribute(kernel->function,
                                  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                  int(m.dynamicSharedMemory)),
               "cuFuncSetAttribute"))
      return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
  }
  std::vector<DeviceTensor> tensors;
  for (int i = 0; i < numArgs; ++i) {
    tensors.push_back({m.argumentRoles[i], CUdeviceptr(reinterpret_cast<uintptr_t>(args[i].data)),
                       std::vector<int64_t>(args[i].shape, args[i].shape + args[i].ndim),
                       std::vector<int64_t>(args[i].strides, args[i].strides + args[i].ndim),
                       bufferElemSize(bufferElemOf(args[i].dtype)),
                       tensorMapType(bufferElemOf(args[i].dtype))});
  }
  // The dynamic scheduler's tile counter, the caller's or this stream's own:
  // zeroed in stream order before the launch.
  if (m.hasTileCounter()) {
    CUdeviceptr counter = 0;
    if (numArgs == int(m.argumentRoles.size())) {
      counter = tensors.back().data;
    } else {
      std::lock_guard<std::mutex> lock(kernel->tileCountersMutex);
      CUdeviceptr &cached = kernel->tileCounters[static_cast<CUstream>(stream)];
      if (!cached && !check(d.memAlloc(&cached, 16), "cuMemAlloc (tile counter)"))
        return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
      counter = cached;
      tensors.push_back({kTileCounterRole, counter, {1}, {1}, 4, CU_TENSOR_MAP_DATA_TYPE_INT32});
    }
    if (!check(d.memsetD32Async(counter, 0, 1, static_cast<CUstream>(stream)),
               "cuMemsetD32Async (tile counter)"))
      return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
  }
  std::vector<int64_t> words;
  if (!packArguments(d, m, tensors, kernel->tensorMaps, words, error))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, error);
  std::vector<void *> params;
  for (int64_t &w : words)
    params.push_back(&w);
  std::array<int64_t, 3> grid = m.launchGridFor(sizes, kernel->multiprocessors);
  if (!check(d.launchKernel(kernel->function, unsigned(grid[0]), unsigned(grid[1]),
                            unsigned(grid[2]), unsigned(m.block[0]), unsigned(m.block[1]),
                            unsigned(m.block[2]), unsigned(m.dynamicSharedMemory),
                            static_cast<CUstream>(stream), params.data(), nullptr),
             "cuLaunchKernel"))
    return reportStatus(err, errLen, ATTN_ERROR_CUDA, error);
  return ATTN_OK;
}

} // extern "C"

//===----------------------------------------------------------------------===//
// Tuning (attn_tune): time a group's candidates with CUDA events
//===----------------------------------------------------------------------===//

#include <chrono>
#include <thread>

namespace attn {
namespace {

/// cuInit and device 0's primary context made current (as attn_kernel_launch
/// does); `device` receives "sm_<major><minor>:<name>".
bool currentDevice(Driver &d, std::string &device, std::string &error) {
  Checker check{d, error};
  CUdevice dev;
  CUcontext context;
  int major = 0, minor = 0;
  char name[256] = {0};
  if (!check(d.init(0), "cuInit") || !check(d.deviceGet(&dev, 0), "cuDeviceGet") ||
      !check(d.primaryCtxRetain(&context, dev), "cuDevicePrimaryCtxRetain") ||
      !check(d.ctxSetCurrent(context), "cuCtxSetCurrent") ||
      !check(d.deviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
             "cuDeviceGetAttribute") ||
      !check(d.deviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
             "cuDeviceGetAttribute") ||
      !check(d.deviceGetName(name, int(sizeof(name) - 1), dev), "cuDeviceGetName"))
    return false;
  device = "sm_" + std::to_string(major) + std::to_string(minor) + ":" + name;
  return true;
}

/// The driver, loaded, with device 0's context current (currentDevice).
attn_status openDevice(Driver *&driver, std::string &device, std::string &error) {
  Driver &d = Driver::get();
  if (!d.loadError.empty()) {
    error = d.loadError;
    return ATTN_ERROR_CUDA;
  }
  if (!currentDevice(d, device, error))
    return ATTN_ERROR_CUDA;
  driver = &d;
  return ATTN_OK;
}

/// Waits for `event` at most `seconds`: 1 done, 0 timed out, -1 failed.
int waitForEvent(Driver &d, CUevent event, double seconds, std::string &error) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(seconds));
  Checker check{d, error};
  for (;;) {
    CUresult r = d.eventQuery(event);
    if (r == CUDA_SUCCESS)
      return 1;
    if (r != CUDA_ERROR_NOT_READY) {
      check(r, "the candidate's launches (cuEventQuery)");
      return -1;
    }
    if (std::chrono::steady_clock::now() > deadline)
      return 0;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

bool isOutputRole(const std::string &role) {
  return role == "out" || role == "lse" || role == "final_state";
}

size_t dtypeBytes(attn_dtype t) {
  return t == ATTN_F16 || t == ATTN_BF16 ? 2 : t == ATTN_U8 ? 1 : 4;
}

} // namespace

attn_status tuneCudaCandidates(const TuningCandidateSet &set, const attn_tensor *args,
                               int numArgs, void *stream, const CudaTuneParams &params,
                               TuningOutcome &outcome, std::string &device,
                               std::string &error) {
  outcome = TuningOutcome();
  if (set.manifests.empty()) {
    error = "attn_tune: no candidates";
    return ATTN_ERROR_INVALID_ARGUMENT;
  }
  if (!args && numArgs > 0) {
    error = "attn_tune: null argument array";
    return ATTN_ERROR_INVALID_ARGUMENT;
  }
  const KernelManifest &first = set.manifests.front();
  ExecInputs sizes;
  // Every candidate: they may differ in the strides they take (any_strides).
  for (const KernelManifest &candidate : set.manifests)
    if (!validateLaunchArguments(candidate, args, numArgs, sizes, error)) {
      error = "attn_tune: " + error;
      return ATTN_ERROR_INVALID_ARGUMENT;
    }
  Driver *driver = nullptr;
  if (attn_status s = openDevice(driver, device, error); s != ATTN_OK)
    return s;
  Driver &d = *driver;
  std::unique_ptr<TuningCache> cache;
  std::string cachePath = params.cachePath.empty() ? TuningCache::defaultPath() : params.cachePath;
  if (cachePath != "-" && !cachePath.empty())
    cache = std::make_unique<TuningCache>(cachePath);
  TuningShape shape = tuningShapeOf(*first.spec, sizes);

  // Outputs go to scratch buffers of the same shape and strides.
  std::vector<attn_tensor> scratchArgs(args, args + numArgs);
  std::vector<CUdeviceptr> scratch;
  bool leakScratch = false; // a candidate that never finished may still write
  struct ScratchGuard {
    Driver &d;
    std::vector<CUdeviceptr> &buffers;
    bool &leak;
    ~ScratchGuard() {
      if (!leak)
        for (CUdeviceptr p : buffers)
          d.memFree(p);
    }
  } guard{d, scratch, leakScratch};
  std::vector<std::unique_ptr<attn_kernel, void (*)(attn_kernel *)>> kernels;
  bool prepared = false, abandoned = false;
  auto prepare = [&](std::string &message) {
    if (prepared)
      return true;
    Checker check{d, message};
    for (int i = 0; i < numArgs; ++i) {
      if (!isOutputRole(first.argumentRoles[i]))
        continue;
      const attn_tensor &t = args[i];
      size_t span = 1;
      for (int k = 0; k < t.ndim; ++k)
        span += size_t(std::max<int64_t>(t.shape[k] - 1, 0)) *
                size_t(t.strides[k] < 0 ? -t.strides[k] : t.strides[k]);
      CUdeviceptr p;
      if (!check(d.memAlloc(&p, std::max<size_t>(span * dtypeBytes(t.dtype), 16)),
                 "cuMemAlloc (tuning scratch output)"))
        return false;
      scratch.push_back(p);
      scratchArgs[i].data = reinterpret_cast<void *>(p);
    }
    for (const std::string &path : set.manifestPaths) {
      attn_kernel *k = nullptr;
      char buf[2048];
      if (attn_kernel_load(path.c_str(), &k, buf, sizeof(buf)) != ATTN_OK) {
        message = buf;
        return false;
      }
      kernels.emplace_back(k, attn_kernel_destroy);
    }
    prepared = true;
    return true;
  };
  std::string prepareError;
  auto timer = [&](size_t index, double &ms, std::string &message) -> bool {
    if (!prepareError.empty()) {
      message = prepareError; // the same failure for every candidate
      return false;
    }
    if (abandoned) {
      message = "not timed: an earlier candidate's launches did not finish";
      return false;
    }
    if (!prepare(message)) {
      prepareError = message;
      return false;
    }
    attn_kernel *k = kernels[index].get();
    char buf[2048];
    CUstream s = static_cast<CUstream>(stream);
    for (int w = 0; w < std::max(params.warmup, 0); ++w)
      if (attn_kernel_launch(k, scratchArgs.data(), numArgs, stream, buf, sizeof(buf)) !=
          ATTN_OK) {
        message = buf;
        return false;
      }
    int repeats = std::max(params.repeats, 1);
    std::vector<CUevent> events(size_t(repeats) + 1, nullptr);
    Checker check{d, message};
    auto destroy = [&] {
      for (CUevent e : events)
        if (e)
          d.eventDestroy(e);
    };
    for (CUevent &e : events)
      if (!check(d.eventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate")) {
        destroy();
        return false;
      }
    if (!check(d.eventRecord(events[0], s), "cuEventRecord")) {
      destroy();
      return false;
    }
    for (int r = 0; r < repeats; ++r) {
      if (attn_kernel_launch(k, scratchArgs.data(), numArgs, stream, buf, sizeof(buf)) !=
          ATTN_OK) {
        message = buf;
        destroy();
        return false;
      }
      if (!check(d.eventRecord(events[r + 1], s), "cuEventRecord")) {
        destroy();
        return false;
      }
    }
    double timeout = params.timeoutSeconds > 0 ? params.timeoutSeconds : 30;
    int waited = waitForEvent(d, events.back(), timeout, message);
    if (waited <= 0) {
      if (waited == 0) {
        message = "its launches did not finish within " + std::to_string(timeout) + " s";
        abandoned = leakScratch = true;
      }
      destroy();
      return false;
    }
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
      float t = 0;
      if (!check(d.eventElapsedTime(&t, events[r], events[r + 1]), "cuEventElapsedTime")) {
        destroy();
        return false;
      }
      times.push_back(t);
    }
    destroy();
    std::sort(times.begin(), times.end());
    ms = times[times.size() / 2];
    return true;
  };
  TuningOptions options;
  options.cache = cache.get();
  options.retune = params.retune;
  if (!cache)
    outcome.warning = "no tuning cache (ATTN_TUNING_CACHE, XDG_CACHE_HOME and HOME unset, "
                      "or disabled)";
  std::string noCacheWarning = outcome.warning;
  attn_status status =
      chooseTuningCandidate(set, device, shape, timer, options, outcome, error);
  if (!noCacheWarning.empty() && outcome.warning.empty())
    outcome.warning = noCacheWarning;
  return status;
}

attn_status tuneCudaCandidates(const TuningCandidateSet &set, const ExecInputs &in,
                               const CudaTuneParams &params, TuningOutcome &outcome,
                               std::string &device, std::string &error) {
  if (set.manifests.empty()) {
    error = "no tuning candidates";
    return ATTN_ERROR_INVALID_ARGUMENT;
  }
  const KernelManifest &m = set.manifests.front();
  // The context must be current before the inputs are copied; the tensor
  // overload below makes it current again (cheap: a retained primary context).
  Driver *driver = nullptr;
  if (attn_status s = openDevice(driver, device, error); s != ATTN_OK)
    return s;
  Driver &d = *driver;
  Checker check{d, error};
  bool withLse = std::find(m.argumentRoles.begin(), m.argumentRoles.end(), "lse") !=
                 m.argumentRoles.end();
  std::vector<HostBuffer> buffers = bindArguments(*m.spec, in, withLse);
  DeviceResources res{d};
  std::vector<attn_tensor> args;
  for (HostBuffer &buf : buffers) {
    CUdeviceptr ptr;
    if (!check(d.memAlloc(&ptr, std::max<size_t>(buf.bytes.size(), 16)), "cuMemAlloc") ||
        !check(d.memcpyHtoD(ptr, buf.bytes.data(), buf.bytes.size()), "cuMemcpyHtoD"))
      return ATTN_ERROR_CUDA;
    res.buffers.push_back(ptr);
    attn_tensor t{};
    t.data = reinterpret_cast<void *>(ptr);
    t.ndim = int32_t(buf.shape.size());
    for (size_t i = 0; i < buf.shape.size() && i < ATTN_MAX_RANK; ++i) {
      t.shape[i] = buf.shape[i];
      t.strides[i] = buf.strides[i];
    }
    t.dtype = buf.elem == BufferElem::F16    ? ATTN_F16
              : buf.elem == BufferElem::BF16 ? ATTN_BF16
              : buf.elem == BufferElem::I32  ? ATTN_I32
              : buf.elem == BufferElem::I8   ? ATTN_U8
                                             : ATTN_F32;
    args.push_back(t);
  }
  attn_status status = tuneCudaCandidates(set, args.data(), int(args.size()), nullptr, params,
                                          outcome, device, error);
  if (status == ATTN_OK && !outcome.fromCache &&
      !check(d.ctxSynchronize(), "cuCtxSynchronize (after tuning)"))
    return ATTN_ERROR_CUDA;
  return status;
}

} // namespace attn

extern "C" {

void attn_tune_options_init(attn_tune_options *options) {
  if (options)
    std::memset(options, 0, sizeof(*options));
}

attn_status attn_tune(const char *candidatesDir, const attn_tensor *args, int numArgs,
                      void *stream, const attn_tune_options *options, attn_tune_result *result,
                      attn_kernel **kernel, char *err, size_t errLen) {
  using namespace attn;
  if (!candidatesDir || !result)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                        "attn_tune: null candidates directory or result");
  std::memset(result, 0, sizeof(*result));
  if (kernel)
    *kernel = nullptr;
  attn_tune_options defaults;
  attn_tune_options_init(&defaults);
  const attn_tune_options &o = options ? *options : defaults;
  TuningCandidateSet set;
  std::string error;
  attn_status status = loadTuningCandidates(candidatesDir, o.group ? o.group : "", set, error);
  if (status != ATTN_OK)
    return reportStatus(err, errLen, status, error);
  if (set.manifests.size() > ATTN_TUNE_MAX_CANDIDATES)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                        std::string(candidatesDir) + ": more than " +
                            std::to_string(ATTN_TUNE_MAX_CANDIDATES) + " candidates");
  CudaTuneParams params;
  if (o.warmup > 0)
    params.warmup = o.warmup;
  if (o.repeats > 0)
    params.repeats = o.repeats;
  if (o.timeout_seconds > 0)
    params.timeoutSeconds = o.timeout_seconds;
  params.retune = o.retune != 0;
  params.cachePath = o.no_cache ? "-" : o.cache_path ? o.cache_path : "";
  TuningOutcome outcome;
  std::string device;
  status = tuneCudaCandidates(set, args, numArgs, stream, params, outcome, device, error);
  if (status != ATTN_OK)
    return reportStatus(err, errLen, status, error);
  auto copy = [](char *dst, size_t n, const std::string &src) {
    std::strncpy(dst, src.c_str(), n - 1);
    dst[n - 1] = '\0';
  };
  const KernelManifest &winner = set.manifests[outcome.chosen];
  copy(result->group, sizeof(result->group), set.group);
  copy(result->candidate, sizeof(result->candidate), winner.tuningCandidate);
  copy(result->manifest_path, sizeof(result->manifest_path), set.manifestPaths[outcome.chosen]);
  copy(result->key, sizeof(result->key), outcome.key);
  result->from_cache = outcome.fromCache ? 1 : 0;
  for (auto &[tag, ms] : outcome.timings) {
    if (result->num_timings >= ATTN_TUNE_MAX_CANDIDATES)
      break;
    attn_tune_timing &t = result->timings[result->num_timings++];
    copy(t.candidate, sizeof(t.candidate), tag);
    t.median_ms = ms;
  }
  std::string warning = outcome.warning;
  for (const std::string &f : outcome.failures)
    warning += (warning.empty() ? "" : "; ") + f;
  copy(result->warning, sizeof(result->warning), warning);
  if (kernel)
    return attn_kernel_load(set.manifestPaths[outcome.chosen].c_str(), kernel, err, errLen);
  return ATTN_OK;
}

} // extern "C"
