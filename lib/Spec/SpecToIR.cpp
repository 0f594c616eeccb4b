//===- SpecToIR.cpp - build attn IR from a parsed spec --------------------===//
//
// The spec is already validated (types checked, shapes consistent), so this
// translation cannot fail: every spec the parser accepts maps to IR that
// verifies. Memref types carry the layout: bhsd is the identity layout, bshd a
// strided one, so both describe the caller's buffers without copies.
//
//===----------------------------------------------------------------------===//

#include "attn/Spec/SpecToIR.h"
#include "attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;

namespace attn {
namespace {

int64_t toMlirDim(int64_t d) { return d == kDynamic ? ShapedType::kDynamic : d; }

/// Product of dims, dynamic if any is.
int64_t mulDims(std::initializer_list<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims) {
    if (d == kDynamic)
      return ShapedType::kDynamic;
    p *= d;
  }
  return p;
}

class SpecModuleBuilder {
public:
  SpecModuleBuilder(MLIRContext &ctx, const Spec &spec, StringRef sourceName,
                    bool forceLse)
      : ctx(ctx), spec(spec), builder(&ctx),
        loc(FileLineColLoc::get(&ctx, sourceName, 1, 1)),
        returnLse(spec.returnLse || forceLse) {}

  OwningOpRef<ModuleOp> build();

private:
  Type elementType() {
    switch (spec.dtype) {
    case ElementType::F16:
      return builder.getF16Type();
    case ElementType::BF16:
      return builder.getBF16Type();
    case ElementType::F32:
      return builder.getF32Type();
    }
    return builder.getF32Type();
  }

  /// A logical [B, H, S, D] operand in the spec's layout.
  MemRefType headType(int64_t h, int64_t s, int64_t d, Type et) {
    SmallVector<int64_t> shape = {toMlirDim(spec.batch), toMlirDim(h), toMlirDim(s),
                                  d};
    if (spec.layout == Layout::BHSD)
      return MemRefType::get(shape, et);
    // [B, S, H, D] in memory: stride(H) = D, stride(S) = H*D, stride(B) = S*H*D.
    SmallVector<int64_t> strides = {mulDims({s, h, d}), d, mulDims({h, d}), 1};
    return MemRefType::get(shape, et, StridedLayoutAttr::get(&ctx, 0, strides));
  }

  /// Gates: [B, H, S] (scalar) or [B, H, S, D] (vector) in the spec's layout.
  MemRefType gatesType() {
    Type f32 = builder.getF32Type();
    int64_t h = spec.headsQ, s = spec.seqQ;
    switch (spec.gate) {
    case GateKindSpec::HeadConstant:
      return MemRefType::get({toMlirDim(h)}, f32);
    case GateKindSpec::Vector:
      return headType(h, s, spec.headDim, f32);
    case GateKindSpec::Scalar:
      break;
    }
    SmallVector<int64_t> shape = {toMlirDim(spec.batch), toMlirDim(h), toMlirDim(s)};
    if (spec.layout == Layout::BHSD)
      return MemRefType::get(shape, f32);
    SmallVector<int64_t> strides = {mulDims({s, h}), 1, toMlirDim(h)};
    return MemRefType::get(shape, f32, StridedLayoutAttr::get(&ctx, 0, strides));
  }

  MemRefType stateType() {
    return MemRefType::get({toMlirDim(spec.batch), toMlirDim(spec.headsQ),
                            spec.headDim, spec.headDimV},
                           builder.getF32Type());
  }

  void buildAttention(ModuleOp module);
  void buildLinear(ModuleOp module);
  void buildRegion(Region &region, const Expr &expr, bool takesScore,
                   ValueRange captures);
  Value emit(const Expr &e);

  /// Creates the function and returns its arguments.
  func::FuncOp createFunc(ModuleOp module, ArrayRef<Type> argTypes);

  MLIRContext &ctx;
  const Spec &spec;
  OpBuilder builder;
  Location loc;
  bool returnLse;

  // Values of the expression variables while a region is being emitted.
  struct RegionEnv {
    Value b, h, q, k, score, sq, sk;
    SmallVector<Value> tensors;
  } env;
};

func::FuncOp SpecModuleBuilder::createFunc(ModuleOp module, ArrayRef<Type> argTypes) {
  builder.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(builder, loc, spec.name,
                                   builder.getFunctionType(argTypes, {}));
  if (!spec.options.empty()) {
    SmallVector<NamedAttribute> opts;
    for (auto &[key, value] : spec.options.items())
      if (value.is_number_integer())
        opts.push_back(builder.getNamedAttr(key, builder.getI64IntegerAttr(
                                                     value.get<int64_t>())));
    func->setAttr("attn.options", builder.getDictionaryAttr(opts));
  }
  Block *entry = func.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  return func;
}

OwningOpRef<ModuleOp> SpecModuleBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  if (spec.kind == VariantKind::Attention)
    buildAttention(*module);
  else
    buildLinear(*module);
  return module;
}

void SpecModuleBuilder::buildAttention(ModuleOp module) {
  Type et = elementType(), f32 = builder.getF32Type();
  Type i8 = builder.getI8Type(), i32 = builder.getI32Type();
  int64_t b = toMlirDim(spec.batch), hq = toMlirDim(spec.headsQ);
  int64_t sq = toMlirDim(spec.seqQ), sk = toMlirDim(spec.seqK);

  SmallVector<Type> types = {headType(spec.headsQ, spec.seqQ, spec.headDim, et),
                             headType(spec.headsKV, spec.seqK, spec.headDim, et),
                             headType(spec.headsKV, spec.seqK, spec.headDimV, et)};
  if (spec.blockSparse) {
    auto [bq, bk] = *spec.blockSparse;
    int64_t rows = ShapedType::isDynamic(sq) ? sq : (sq + bq - 1) / bq;
    int64_t cols = ShapedType::isDynamic(sk) ? sk : (sk + bk - 1) / bk;
    // Batch and head dims are "B or 1" / "Hq or 1": bound at run time.
    types.push_back(MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, rows, cols}, i8));
  }
  if (spec.documents) {
    types.push_back(MemRefType::get({b, sq}, i32));
    types.push_back(MemRefType::get({b, sk}, i32));
  }
  if (spec.alibi == AlibiShape::PerHead)
    types.push_back(MemRefType::get({hq}, f32));
  else if (spec.alibi == AlibiShape::PerBatchHead)
    types.push_back(MemRefType::get({b, hq}, f32));
  for (const TensorDecl &t : spec.tensors) {
    SmallVector<int64_t> shape;
    for (int64_t d : t.shape)
      shape.push_back(toMlirDim(d));
    types.push_back(MemRefType::get(
        shape, t.elementType == TensorElementType::F32 ? f32 : i32));
  }
  types.push_back(headType(spec.headsQ, spec.seqQ, spec.headDimV, et));
  if (returnLse)
    types.push_back(MemRefType::get({b, hq, sq}, f32));

  func::FuncOp func = createFunc(module, types);
  ValueRange args = func.getArguments();
  unsigned next = 3;
  auto take = [&](bool present) -> Value { return present ? args[next++] : Value(); };
  Value blockMask = take(spec.blockSparse.has_value());
  Value qDocs = take(spec.documents);
  Value kvDocs = take(spec.documents);
  Value slopes = take(spec.alibi != AlibiShape::None);
  ValueRange captures = args.slice(next, spec.tensors.size());
  next += spec.tensors.size();
  Value out = take(true);
  Value lse = take(returnLse);

  auto op = attn::AttentionOp::create(builder, loc, args[0], args[1], args[2],
                                      blockMask, qDocs, kvDocs, slopes, captures,
                                      out, lse, /*scale=*/nullptr,
                                      /*causal=*/nullptr, /*window=*/nullptr,
                                      /*block_sparse=*/nullptr,
                                      /*softcap=*/nullptr,
                                      /*tile_plan=*/nullptr);
  if (spec.scale)
    op.setScaleAttr(builder.getF32FloatAttr(*spec.scale));
  if (spec.causal)
    op.setCausal(true);
  if (spec.window)
    op.setWindowAttr(
        attn::WindowAttr::get(&ctx, spec.window->first, spec.window->second));
  if (spec.blockSparse)
    op.setBlockSparseAttr(attn::BlockSparseAttr::get(
        &ctx, spec.blockSparse->first, spec.blockSparse->second));
  if (spec.softcap)
    op.setSoftcapAttr(builder.getF32FloatAttr(*spec.softcap));
  if (spec.scoreExpr)
    buildRegion(op.getScoreMod(), *spec.scoreExpr, /*takesScore=*/true, captures);
  if (spec.maskExpr)
    buildRegion(op.getMaskMod(), *spec.maskExpr, /*takesScore=*/false, captures);

  builder.setInsertionPointAfter(op);
  func::ReturnOp::create(builder, loc);
}

void SpecModuleBuilder::buildLinear(ModuleOp module) {
  Type et = elementType();
  bool gated = spec.kind == VariantKind::GatedLinearAttention;
  SmallVector<Type> types = {headType(spec.headsQ, spec.seqQ, spec.headDim, et),
                             headType(spec.headsQ, spec.seqQ, spec.headDim, et),
                             headType(spec.headsQ, spec.seqQ, spec.headDimV, et)};
  if (gated)
    types.push_back(gatesType());
  if (spec.initialState)
    types.push_back(stateType());
  types.push_back(headType(spec.headsQ, spec.seqQ, spec.headDimV, et));
  if (spec.finalState)
    types.push_back(stateType());

  func::FuncOp func = createFunc(module, types);
  ValueRange args = func.getArguments();
  unsigned next = gated ? 4 : 3;
  Value initial = spec.initialState ? args[next++] : Value();
  Value out = args[next++];
  Value final = spec.finalState ? args[next++] : Value();

  if (gated) {
    auto op = attn::GatedLinearAttentionOp::create(
        builder, loc, args[0], args[1], args[2], args[3], initial, out, final,
        attn::GateKindAttr::get(&ctx, static_cast<GateKind>(spec.gate)),
        /*scale=*/nullptr);
    if (spec.scale)
      op.setScaleAttr(builder.getF32FloatAttr(*spec.scale));
  } else {
    auto op = attn::LinearAttentionOp::create(
        builder, loc, args[0], args[1], args[2], initial, out, final,
        attn::FeatureMapAttr::get(&ctx,
                                  static_cast<FeatureMap>(spec.featureMap)),
        spec.normalize ? builder.getUnitAttr() : nullptr, /*scale=*/nullptr);
    if (spec.scale)
      op.setScaleAttr(builder.getF32FloatAttr(*spec.scale));
  }
  func::ReturnOp::create(builder, loc);
}

void SpecModuleBuilder::buildRegion(Region &region, const Expr &expr,
                                    bool takesScore, ValueRange captures) {
  OpBuilder::InsertionGuard guard(builder);
  Type index = builder.getIndexType();
  SmallVector<Type> argTypes(attn::AttentionOp::kNumIndexArgs, index);
  if (takesScore)
    argTypes.push_back(builder.getF32Type());
  for (Value c : captures)
    argTypes.push_back(c.getType());
  SmallVector<Location> locs(argTypes.size(), loc);
  Block *block = builder.createBlock(&region, {}, argTypes, locs);

  env = RegionEnv();
  env.b = block->getArgument(0);
  env.h = block->getArgument(1);
  env.q = block->getArgument(2);
  env.k = block->getArgument(3);
  unsigned next = 4;
  if (takesScore)
    env.score = block->getArgument(next++);
  for (unsigned i = 0; i < captures.size(); ++i)
    env.tensors.push_back(block->getArgument(next + i));
  if (exprUsesVar(expr, ExprVar::Sq) || exprUsesVar(expr, ExprVar::Sk)) {
    auto lens = attn::SeqLensOp::create(builder, loc, index, index);
    env.sq = lens.getQueryLen();
    env.sk = lens.getKeyLen();
  }
  Value result = emit(expr);
  attn::YieldOp::create(builder, loc, ValueRange{result});
}

Value SpecModuleBuilder::emit(const Expr &e) {
  Type index = builder.getIndexType(), f32 = builder.getF32Type();
  auto operand = [&](unsigned i) { return emit(*e.operands[i]); };
  switch (e.kind) {
  case ExprKind::IntLiteral:
    return arith::ConstantIndexOp::create(builder, loc, e.intValue);
  case ExprKind::FloatLiteral:
    return arith::ConstantOp::create(builder, loc, f32,
                                     builder.getF32FloatAttr(e.floatValue));
  case ExprKind::BoolLiteral:
    return arith::ConstantIntOp::create(builder, loc, e.intValue != 0, 1);
  case ExprKind::Var:
    switch (e.var) {
    case ExprVar::B:
      return env.b;
    case ExprVar::H:
      return env.h;
    case ExprVar::Q:
      return env.q;
    case ExprVar::K:
      return env.k;
    case ExprVar::Score:
      return env.score;
    case ExprVar::Sq:
      return env.sq;
    case ExprVar::Sk:
      return env.sk;
    }
    break;
  case ExprKind::Index: {
    SmallVector<Value> indices;
    for (unsigned i = 0; i < e.operands.size(); ++i)
      indices.push_back(operand(i));
    Value loaded =
        memref::LoadOp::create(builder, loc, env.tensors[e.tensorIndex], indices);
    if (e.type == ExprType::Int)
      return arith::IndexCastOp::create(builder, loc, index, loaded);
    return loaded;
  }
  case ExprKind::IntToFloat: {
    Value i64 = arith::IndexCastOp::create(builder, loc, builder.getI64Type(),
                                           operand(0));
    return arith::SIToFPOp::create(builder, loc, f32, i64);
  }
  case ExprKind::Unary: {
    Value x = operand(0);
    if (e.op == "!")
      return arith::XOrIOp::create(
          builder, loc, x, arith::ConstantIntOp::create(builder, loc, 1, 1));
    if (e.type == ExprType::Float)
      return arith::NegFOp::create(builder, loc, x);
    return arith::SubIOp::create(
        builder, loc, arith::ConstantIndexOp::create(builder, loc, 0), x);
  }
  case ExprKind::Binary: {
    Value l = operand(0), r = operand(1);
    bool isFloat = e.operands[0]->type == ExprType::Float;
    const std::string &op = e.op;
    if (op == "&&")
      return arith::AndIOp::create(builder, loc, l, r);
    if (op == "||")
      return arith::OrIOp::create(builder, loc, l, r);
    if (op == "<" || op == "<=" || op == ">" || op == ">=" || op == "==" ||
        op == "!=") {
      if (isFloat) {
        auto pred = op == "<"    ? arith::CmpFPredicate::OLT
                    : op == "<=" ? arith::CmpFPredicate::OLE
                    : op == ">"  ? arith::CmpFPredicate::OGT
                    : op == ">=" ? arith::CmpFPredicate::OGE
                    : op == "==" ? arith::CmpFPredicate::OEQ
                                 : arith::CmpFPredicate::UNE;
        return arith::CmpFOp::create(builder, loc, pred, l, r);
      }
      auto pred = op == "<"    ? arith::CmpIPredicate::slt
                  : op == "<=" ? arith::CmpIPredicate::sle
                  : op == ">"  ? arith::CmpIPredicate::sgt
                  : op == ">=" ? arith::CmpIPredicate::sge
                  : op == "==" ? arith::CmpIPredicate::eq
                               : arith::CmpIPredicate::ne;
      return arith::CmpIOp::create(builder, loc, pred, l, r);
    }
    if (isFloat) {
      if (op == "+")
        return arith::AddFOp::create(builder, loc, l, r);
      if (op == "-")
        return arith::SubFOp::create(builder, loc, l, r);
      if (op == "*")
        return arith::MulFOp::create(builder, loc, l, r);
      return arith::DivFOp::create(builder, loc, l, r);
    }
    if (op == "+")
      return arith::AddIOp::create(builder, loc, l, r);
    if (op == "-")
      return arith::SubIOp::create(builder, loc, l, r);
    if (op == "*")
      return arith::MulIOp::create(builder, loc, l, r);
    // INT64_MIN / -1 overflows, which arith.divsi / remsi (LLVM's sdiv /
    // srem) leave undefined: found by fuzzing as NaN outputs on the CPU path.
    // Define it as the reference does: a divisor of -1 negates (wrapping, so
    // INT64_MIN / -1 = INT64_MIN) and leaves remainder 0. A constant divisor
    // folds the guard away.
    // (Ints are index values here: an IntegerAttr of that type, not
    // ConstantIntOp, which takes integer types only.)
    auto constant = [&](int64_t v) -> Value {
      return arith::ConstantOp::create(builder, loc, builder.getIntegerAttr(l.getType(), v));
    };
    Value byMinusOne =
        arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::eq, r, constant(-1));
    Value safe = arith::SelectOp::create(builder, loc, byMinusOne, constant(1), r);
    Value zero = constant(0);
    if (op == "/")
      return arith::SelectOp::create(builder, loc, byMinusOne,
                                     arith::SubIOp::create(builder, loc, zero, l),
                                     arith::DivSIOp::create(builder, loc, l, safe));
    return arith::SelectOp::create(builder, loc, byMinusOne, zero,
                                   arith::RemSIOp::create(builder, loc, l, safe));
  }
  case ExprKind::Call: {
    if (e.op == "select")
      return arith::SelectOp::create(builder, loc, operand(0), operand(1),
                                     operand(2));
    bool isFloat = e.type == ExprType::Float;
    if (e.op == "min")
      return isFloat ? (Value)arith::MinimumFOp::create(builder, loc, operand(0),
                                                        operand(1))
                     : (Value)arith::MinSIOp::create(builder, loc, operand(0),
                                                     operand(1));
    if (e.op == "max")
      return isFloat ? (Value)arith::MaximumFOp::create(builder, loc, operand(0),
                                                        operand(1))
                     : (Value)arith::MaxSIOp::create(builder, loc, operand(0),
                                                     operand(1));
    if (e.op == "abs") {
      Value x = operand(0);
      if (isFloat)
        return math::AbsFOp::create(builder, loc, x);
      // max(x, -x): index-typed math.absi has no LLVM lowering.
      Value neg = arith::SubIOp::create(
          builder, loc, arith::ConstantIndexOp::create(builder, loc, 0), x);
      return arith::MaxSIOp::create(builder, loc, x, neg);
    }
    if (e.op == "exp")
      return math::ExpOp::create(builder, loc, operand(0));
    return math::TanhOp::create(builder, loc, operand(0));
  }
  }
  (void)f32;
  return Value();
}

} // namespace

OwningOpRef<ModuleOp> buildSpecModule(MLIRContext &ctx, const Spec &spec,
                                      StringRef sourceName, bool forceLse) {
  ctx.loadDialect<attn::AttnDialect, func::FuncDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect>();
  return SpecModuleBuilder(ctx, spec, sourceName, forceLse).build();
}

void registerSpecDialects(DialectRegistry &registry) {
  registry.insert<attn::AttnDialect, func::FuncDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect>();
}

} // namespace attn
