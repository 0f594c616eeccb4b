//===- CompilerContext.h - an MLIR context for library compiles -*- C++ -*-===//
#ifndef ATTN_TRANSFORMS_COMPILERCONTEXT_H
#define ATTN_TRANSFORMS_COMPILERCONTEXT_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace attn {

/// An MLIRContext with every dialect, extension and LLVM/NVVM translation the
/// pipelines use, whose diagnostics are collected into a string: library
/// callers (attn-exec's CPU path, the GPU compiler, the JIT) turn them into
/// error messages instead of printing them. Constructing one also registers
/// the passes that textual pipelines name.
class CompilerContext {
public:
  CompilerContext();
  mlir::MLIRContext &get() { return context; }
  /// Everything diagnosed so far, one diagnostic per line.
  const std::string &diagnostics() const { return text; }

private:
  mlir::MLIRContext context;
  std::string text;
  llvm::raw_string_ostream stream{text};
  mlir::ScopedDiagnosticHandler handler;
};

/// Registers the upstream and attn passes once per process (thread-safe), so
/// parsePassPipeline works outside attn-opt.
void ensurePassesRegistered();

} // namespace attn

#endif // ATTN_TRANSFORMS_COMPILERCONTEXT_H
