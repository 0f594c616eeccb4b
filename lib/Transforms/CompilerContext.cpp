//===- CompilerContext.cpp - an MLIR context for library compiles ---------===//

#include "attn/Transforms/CompilerContext.h"
#include "attn/Transforms/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include <mutex>

using namespace mlir;

namespace attn {

void ensurePassesRegistered() {
  static std::once_flag registered;
  std::call_once(registered, [] {
    registerAllPasses();
    registerAttnPasses();
  });
}

static DialectRegistry compilerRegistry() {
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  return registry;
}

CompilerContext::CompilerContext()
    : context(compilerRegistry()), handler(&context, [this](Diagnostic &diag) {
        stream << diag << "\n";
        return success();
      }) {
  // Dialects load on demand (the spec builder's and each pass's dependent
  // dialects): loading all ~60 registered ones took 10-12 ms of every
  // compile (#6). The PTX is byte-identical either way (204 files: examples
  // and GPU specs x sm_80/sm_90a x default, --persistent, --tensor-cores=false,
  // --ping-pong=false, --upstream-nvvm-pipeline, --chunked-linear=false).
  ensurePassesRegistered();
}

} // namespace attn
