//===- CudaRuntime.h - load and launch attn kernels (driver API) -*- C++ -*-===//
//
// No MLIR: this builds in the runtime-only configuration on GPU machines. The
// CUDA driver (libcuda.so.1) is opened at run time, so binaries that link
// this still start, and fail with a message, on machines without a driver.
// Every driver call's result is checked; failures come back as false plus a
// message naming the call, never an abort.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_CUDARUNTIME_H
#define ATTN_RUNTIME_CUDARUNTIME_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Runtime/Manifest.h"
#include "attn/Runtime/Tuning.h"
#include "attn/attn_runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace attn {

struct CudaRunOptions {
  int device = 0;
  int timingRepeats = 0;        ///< >0: also time that many launches
  double *medianMilliseconds = nullptr; ///< receives the median when timing
};

/// Loads the manifest's kernel (cubin if present, else PTX; the dispatch
/// variant for the inputs' Sk, if any) on the device,
/// copies the inputs, launches, and copies the outputs back. Outputs are
/// poisoned with NaN before the launch.
bool runCudaKernel(const KernelManifest &manifest, const ExecInputs &in,
                   ExecOutputs &out, std::string &error,
                   const CudaRunOptions &options = {});

/// The C API's argument checks (attn_kernel_launch): count, dtype, rank,
/// shape against the spec and each other, a contiguous head dimension. Binds
/// the problem sizes into `sizes`. Needs no GPU.
bool validateLaunchArguments(const KernelManifest &manifest, const attn_tensor *args,
                             int numArgs, ExecInputs &sizes, std::string &error);

/// The geometry of a TMA tensor map over a [B, H, S, D] tensor, innermost
/// dimension first (the order cuTensorMapEncodeTiled takes).
struct TensorMapGeometry {
  uint64_t dims[4] = {0, 0, 0, 0};   ///< D, S, H, B
  uint64_t strides[3] = {0, 0, 0};   ///< bytes between S, H, B steps
  uint32_t box[4] = {0, 0, 1, 1};
};

/// Checks that `spec`'s tensor map can describe the tensor at `address`
/// (rank 4, unit last stride, 16-byte aligned address, strides positive
/// multiples of 16 bytes below 2^40) and fills `geometry`. Errors name the
/// kernel and the argument. Needs no GPU.
bool describeTensorMap(const std::string &kernel, const std::string &role,
                       const TensorMapArgument &spec, uint64_t address,
                       const std::vector<int64_t> &shape, const std::vector<int64_t> &strides,
                       size_t elementBytes, TensorMapGeometry &geometry, std::string &error);

/// How attn_tune and tuneCudaKernels time the candidates.
struct CudaTuneParams {
  int warmup = 3, repeats = 20;
  double timeoutSeconds = 30; ///< per candidate, for its launches to finish
  bool retune = false;
  std::string cachePath; ///< "": TuningCache::defaultPath(); "-": no cache
};

/// The tuning core behind attn_tune: times the candidates of `set` on the
/// device tensors `args` (outputs redirected into scratch buffers) on
/// `stream`, or reads the cached choice. `device` receives the cache's
/// device string ("sm_90:NVIDIA H200").
attn_status tuneCudaCandidates(const TuningCandidateSet &set, const attn_tensor *args,
                               int numArgs, void *stream, const CudaTuneParams &params,
                               TuningOutcome &outcome, std::string &device, std::string &error);

/// attn-exec's tuning: uploads the host inputs once, then as tuneCudaCandidates
/// on the default stream.
attn_status tuneCudaCandidates(const TuningCandidateSet &set, const ExecInputs &in,
                               const CudaTuneParams &params, TuningOutcome &outcome,
                               std::string &device, std::string &error);

} // namespace attn

#endif // ATTN_RUNTIME_CUDARUNTIME_H
