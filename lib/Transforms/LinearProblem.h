//===- LinearProblem.h - what the linear-attention lowerings need ---------===//
//
// linear_attention and gated_linear_attention share one lowering shape (the
// CPU chunkwise form, the GPU recurrent kernel); this is their common view of
// the two ops, and the feature map both apply.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_LINEARPROBLEM_H
#define ATTN_LIB_TRANSFORMS_LINEARPROBLEM_H

#include "attn/IR/AttnOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <optional>

namespace attn {

struct LinearProblem {
  mlir::Value query, key, value, gates, initial, out, final;
  FeatureMap featureMap = FeatureMap::Identity;
  bool normalize = false;
  std::optional<GateKind> gate; ///< set for gated_linear_attention
  double scale = 1.0;

  /// Replaces each operand present by its value in `map` (the host
  /// function's arguments -> a kernel's).
  void remap(const mlir::IRMapping &map) {
    for (mlir::Value *v : {&query, &key, &value, &gates, &initial, &out, &final})
      if (*v)
        *v = map.lookup(*v);
  }
};

/// The problem of a linear_attention or gated_linear_attention op; nullopt
/// for any other op.
std::optional<LinearProblem> getLinearProblem(mlir::Operation *op);

/// phi(x) for an f32 scalar or vector of f32.
mlir::Value emitFeatureMap(mlir::ImplicitLocOpBuilder &b, FeatureMap featureMap,
                           mlir::Value x);

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_LINEARPROBLEM_H
