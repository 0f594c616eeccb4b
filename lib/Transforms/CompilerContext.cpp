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
  context.loadAllAvailableDialects();
  ensurePassesRegistered();
}

} // namespace attn
