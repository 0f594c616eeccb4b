//===- CudaRuntime.cpp - load and launch attn kernels (driver API) --------===//

#include "attn/Runtime/CudaRuntime.h"
#include "attn/Runtime/KernelArgs.h"

#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <fstream>
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
  decltype(&::cuLaunchKernel) launchKernel = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
  decltype(&::cuEventSynchronize) eventSynchronize = nullptr;
  decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
  decltype(&::cuEventDestroy) eventDestroy = nullptr;
  decltype(&::cuGetErrorName) getErrorName = nullptr;
  decltype(&::cuGetErrorString) getErrorString = nullptr;
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
    sym(d.launchKernel, "cuLaunchKernel");
    sym(d.eventCreate, "cuEventCreate");
    sym(d.eventRecord, "cuEventRecord");
    sym(d.eventSynchronize, "cuEventSynchronize");
    sym(d.eventElapsedTime, "cuEventElapsedTime_v2");
    sym(d.eventDestroy, "cuEventDestroy_v2");
    sym(d.getErrorName, "cuGetErrorName");
    sym(d.getErrorString, "cuGetErrorString");
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

bool readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

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

} // namespace

bool runCudaKernel(const KernelManifest &m, const ExecInputs &in, ExecOutputs &out,
                   std::string &error, const CudaRunOptions &options) {
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
  std::string deviceChip = "sm_" + std::to_string(major) + std::to_string(minor);
  if (m.chip == "sm_90a" && deviceChip != "sm_90") {
    error = m.name + ": the kernel was compiled for sm_90a, the device is " + deviceChip;
    return false;
  }

  DeviceResources res{d};
  std::string image;
  bool haveCubin = !m.cubinFile.empty() && readFile(m.directory + "/" + m.cubinFile, image);
  if (!haveCubin && !readFile(m.directory + "/" + m.ptxFile, image)) {
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
  // Memref descriptors: {allocated, aligned, offset, sizes..., strides...}.
  std::vector<int64_t> words;
  for (HostBuffer &buf : buffers) {
    CUdeviceptr ptr;
    if (!check(d.memAlloc(&ptr, buf.bytes.size()), "cuMemAlloc"))
      return false;
    res.buffers.push_back(ptr);
    if (!check(d.memcpyHtoD(ptr, buf.bytes.data(), buf.bytes.size()), "cuMemcpyHtoD"))
      return false;
    words.push_back(int64_t(ptr));
    words.push_back(int64_t(ptr));
    words.push_back(0);
    words.insert(words.end(), buf.shape.begin(), buf.shape.end());
    words.insert(words.end(), buf.strides.begin(), buf.strides.end());
  }
  std::vector<void *> params;
  for (int64_t &w : words)
    params.push_back(&w);

  std::array<int64_t, 3> grid = m.gridFor(in);
  auto launch = [&]() {
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
