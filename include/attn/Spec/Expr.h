//===- Expr.h - the expression language of custom masks and scores -*- C++ -*-===//
//
// Custom mask predicates and score functions are written in specs as small
// expressions over b, h, q, k, score, Sq, Sk and named run-time tensors. This
// header holds the parsed and type-checked form; it has no MLIR dependency so
// that the float64 reference can evaluate the same expressions.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_SPEC_EXPR_H
#define ATTN_SPEC_EXPR_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn {

/// Value types of the expression language. Int values are signed 64-bit
/// (`index` in IR); Float values are f32 in kernels, double in the reference.
enum class ExprType { Int, Float, Bool };
const char *exprTypeName(ExprType t);

/// Element types a captured tensor may have.
enum class TensorElementType { F32, I32 };

/// A run-time tensor a custom expression may index.
struct TensorDecl {
  std::string name;
  TensorElementType elementType = TensorElementType::F32;
  std::vector<int64_t> shape; ///< -1 for a dimension known only at run time.
};

enum class ExprKind {
  IntLiteral,   // intValue
  FloatLiteral, // floatValue
  BoolLiteral,  // intValue (0 or 1)
  Var,          // var (op holds the name as written)
  Index,        // tensor[operands...]: tensorIndex into the declared tensors
                // (op holds the tensor name)
  Unary,        // op: "-" or "!"
  Binary,       // op: + - * / % < <= > >= == != && ||
  Call,         // op: select min max abs exp tanh
  IntToFloat,   // implicit promotion inserted by the type checker
};

enum class ExprVar { B, H, Q, K, Score, Sq, Sk };

struct Expr {
  ExprKind kind;
  ExprType type;
  int64_t intValue = 0;
  double floatValue = 0;
  ExprVar var = ExprVar::B;
  int tensorIndex = -1;
  std::string op;
  std::vector<std::unique_ptr<Expr>> operands;
  int column = 0; ///< 1-based column in the source text, for diagnostics.
};

/// What a parsed expression may refer to.
struct ExprContext {
  bool allowScore = false;              ///< `score` is only visible in score functions.
  const std::vector<TensorDecl> *tensors = nullptr;
};

/// Parses and type-checks `text`, requiring a result of `resultType` (an Int
/// result is promoted when Float is required). On failure returns null and
/// sets `error` to "column N: <problem>".
std::unique_ptr<Expr> parseExpr(const std::string &text, const ExprContext &ctx,
                                ExprType resultType, std::string &error);

/// Collects which variables an expression reads (for `attn.seq_lens` etc.).
bool exprUsesVar(const Expr &e, ExprVar v);

/// Whether an expression indexes the declared tensor number `tensorIndex`.
bool exprUsesTensor(const Expr &e, int tensorIndex);

/// Whether an expression reads some tensor at an index that depends on `v`
/// (`bias[h, k]` and `bias[h, ids[k]]` read at k; `bias[h, q]` does not):
/// in a kernel, one load per distinct value of `v` a thread holds.
bool exprReadsTensorAt(const Expr &e, ExprVar v);

/// Renders a checked expression fully parenthesized, with implicit
/// promotions shown as `float(x)`: "((q + 1) < k)". For tests and diagnostics.
std::string exprToString(const Expr &e);

/// Expressions nested deeper than this (parentheses, unary operators, or
/// operator chains in the syntax tree) are rejected rather than risking the
/// stack of every recursive consumer.
constexpr int kMaxExprDepth = 256;

} // namespace attn

#endif // ATTN_SPEC_EXPR_H
