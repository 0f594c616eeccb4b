//===- SpecToIR.h - build attn IR from a parsed spec ------------*- C++ -*-===//
#ifndef ATTN_SPEC_SPECTOIR_H
#define ATTN_SPEC_SPECTOIR_H

#include "attn/Spec/Spec.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace attn {

/// Builds a module holding one function named after the spec whose body is
/// the single attn op the spec describes. Argument order (the kernel ABI):
///   attention:               query, key, value, [block_mask],
///                            [q_doc_ids, kv_doc_ids], [alibi_slopes],
///                            [tensors in spec order], out, [lse]
///   linear_attention:        query, key, value, [initial_state], out,
///                            [final_state]
///   gated_linear_attention:  query, key, value, gates, [initial_state], out,
///                            [final_state]
/// A valid spec always yields IR that verifies; `sourceName` only feeds the
/// locations. `forceLse` adds the lse output even where the spec does not ask
/// for it (attn-exec always writes lse.npy).
mlir::OwningOpRef<mlir::ModuleOp> buildSpecModule(mlir::MLIRContext &ctx,
                                                  const Spec &spec,
                                                  llvm::StringRef sourceName,
                                                  bool forceLse = false);

/// Registers the dialects buildSpecModule needs.
void registerSpecDialects(mlir::DialectRegistry &registry);

} // namespace attn

#endif // ATTN_SPEC_SPECTOIR_H
