//===- CpuBackend.h - run a spec through the compiled CPU path --*- C++ -*-===//
//
// Compiles the spec with the full pipeline (attn -> tiled loops -> LLVM) and
// runs it with MLIR's ExecutionEngine on the host: the same tiled algorithm
// the GPU kernels implement, executable in CI.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_CPUBACKEND_H
#define ATTN_RUNTIME_CPUBACKEND_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include <string>

namespace attn {

/// Runs `spec` on `in`; `out` receives o (and lse / the final state where the
/// variant has them) in logical order. Returns false with a message on any
/// failure (compilation or execution); never aborts.
bool runCompiledCpu(const Spec &spec, const std::string &specPath,
                    const ExecInputs &in, ExecOutputs &out, std::string &error);

} // namespace attn

#endif // ATTN_RUNTIME_CPUBACKEND_H
