//===- LinearProblem.cpp - what the linear-attention lowerings need -------===//

#include "LinearProblem.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

namespace attn {

std::optional<LinearProblem> getLinearProblem(Operation *op) {
  LinearProblem p;
  if (auto lin = dyn_cast<LinearAttentionOp>(op)) {
    p = {lin.getQuery(), lin.getKey(),          lin.getValue(),     Value(),
         lin.getInitialState(), lin.getOut(), lin.getFinalState()};
    p.featureMap = lin.getFeatureMap();
    p.normalize = lin.getNormalize();
    p.scale = lin.getEffectiveScale();
    return p;
  }
  if (auto gated = dyn_cast<GatedLinearAttentionOp>(op)) {
    p = {gated.getQuery(), gated.getKey(), gated.getValue(), gated.getGates(),
         gated.getInitialState(), gated.getOut(), gated.getFinalState()};
    p.gate = gated.getGate();
    p.scale = gated.getEffectiveScale();
    return p;
  }
  return std::nullopt;
}

Value emitFeatureMap(ImplicitLocOpBuilder &b, FeatureMap featureMap, Value x) {
  auto constant = [&](double v) -> Value {
    Attribute attr = b.getF32FloatAttr(v);
    if (auto vt = dyn_cast<VectorType>(x.getType()))
      attr = DenseElementsAttr::get(vt, b.getF32FloatAttr(v));
    return arith::ConstantOp::create(b, x.getType(), cast<TypedAttr>(attr));
  };
  switch (featureMap) {
  case FeatureMap::Identity:
    return x;
  case FeatureMap::Relu:
    return arith::MaximumFOp::create(b, x, constant(0.0));
  case FeatureMap::EluPlusOne: {
    Value positive = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, constant(0.0));
    return arith::SelectOp::create(b, positive, arith::AddFOp::create(b, x, constant(1.0)),
                                   math::ExpOp::create(b, x));
  }
  }
  return x;
}

} // namespace attn
