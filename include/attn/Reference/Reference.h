//===- Reference.h - float64 reference of every variant ---------*- C++ -*-===//
//
// A deliberately naive float64 implementation of every variant a spec can
// describe, following the op descriptions in AttnOps.td literally: per query
// row a two-pass softmax over all keys, custom expressions evaluated by
// walking the Expr AST, and the linear kinds as the plain recurrence over t.
// It shares no code with the tiled / compiled paths.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_REFERENCE_REFERENCE_H
#define ATTN_REFERENCE_REFERENCE_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include <string>

namespace attn {

/// Runs `spec` on `in` in float64. Checks that the arrays of `in` match the
/// bound sizes in `in` (and the spec's static sizes); on any problem returns
/// false with a message in `error`. On success fills `out.out`, for attention
/// always `out.lse`, and for the linear kinds `out.finalState` when the spec
/// asks for it.
bool runReference(const Spec &spec, const ExecInputs &in, ExecOutputs &out,
                  std::string &error);

/// Values an expression may read, for evaluateExpr.
struct ExprEnv {
  int64_t b = 0, h = 0, q = 0, k = 0, Sq = 0, Sk = 0;
  double score = 0;
  /// Tensors in the order of the spec's TensorDecls.
  const std::vector<std::pair<std::string, HostArray>> *tensors = nullptr;
};

/// The value of an expression: `i` for Int and Bool (0/1), `f` for Float.
struct ExprValue {
  ExprType type = ExprType::Int;
  int64_t i = 0;
  double f = 0;
};

/// Evaluates `e` in double precision (Int as int64 with wrap-around, `/`
/// truncating toward zero, `%` with C semantics, `&&`, `||` and `select`
/// evaluating lazily). Integer division by zero or an out-of-range tensor
/// index is an error.
bool evaluateExpr(const Expr &e, const ExprEnv &env, ExprValue &result,
                  std::string &error);

} // namespace attn

#endif // ATTN_REFERENCE_REFERENCE_H
