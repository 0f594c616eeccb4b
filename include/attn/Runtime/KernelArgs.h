//===- KernelArgs.h - the argument buffers of one compiled kernel -*- C++ -*-===//
//
// Every compiled entry point (CPU function or GPU kernel) takes the spec's
// arguments in the ABI order of buildSpecModule, each a memref. This builds
// those buffers on the host from the logical-order inputs, laid out exactly
// as the spec's memref types say (bshd strides included), and reads the
// outputs back. Plain C++: the CPU backend and the CUDA runtime share it.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_KERNELARGS_H
#define ATTN_RUNTIME_KERNELARGS_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include <cstdint>
#include <string>
#include <vector>

namespace attn {

enum class BufferElem { F32, F16, BF16, I32, I8 };
size_t bufferElemSize(BufferElem e);
const char *bufferElemName(BufferElem e);

/// One memref argument: bytes plus the logical shape and element strides.
struct HostBuffer {
  std::string role; ///< query, key, value, block_mask, ..., out, lse, final_state
  BufferElem elem = BufferElem::F32;
  std::vector<int64_t> shape, strides;
  std::vector<uint8_t> bytes;
  bool isOutput = false;

  int64_t physicalOffset(const std::vector<int64_t> &index) const;
  void store(int64_t offset, double v);
  double load(int64_t offset) const;
};

/// The buffers of every argument in ABI order: inputs filled from `in`,
/// outputs filled with NaN (so an unwritten element is caught). `withLse`
/// adds the lse output to softmax kinds even where the spec has none.
std::vector<HostBuffer> bindArguments(const Spec &spec, const ExecInputs &in,
                                      bool withLse);

/// The roles of the arguments bindArguments produces, in ABI order, without
/// needing the inputs (for manifests).
std::vector<std::string> argumentRoles(const Spec &spec, bool withLse);

/// The element strides a compiled kernel assumes for argument `role` of
/// logical shape `shape`: the spec's layout (bhsd or bshd) for query, key,
/// value, out and gates, row-major for everything else. Strides of
/// dimensions of extent 1 are never used.
std::vector<int64_t> expectedStrides(const Spec &spec, const std::string &role,
                                     const std::vector<int64_t> &shape);

/// Copies the output buffers into `out` (logical order).
void readOutputs(const Spec &spec, const std::vector<HostBuffer> &buffers,
                 ExecOutputs &out);

} // namespace attn

#endif // ATTN_RUNTIME_KERNELARGS_H
