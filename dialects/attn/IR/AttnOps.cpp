//===- AttnOps.cpp - attn op verifiers and helpers ------------------------===//
//
// Verifiers check every shape relation that is knowable statically; dynamic
// dimensions are checked again at run time by the tools that bind them.
// Messages follow one pattern: the operand, what was found, what was expected.
//
//===----------------------------------------------------------------------===//

#include "attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace attn;

#define GET_OP_CLASSES
#include "attn/IR/AttnOps.cpp.inc"

namespace {

std::string dimToString(int64_t d) {
  return ShapedType::isDynamic(d) ? "?" : std::to_string(d);
}

std::string shapeToString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  llvm::raw_string_ostream os(s);
  llvm::interleaveComma(shape, os, [&](int64_t d) { os << dimToString(d); });
  os << "]";
  return s;
}

/// Two dimensions are consistent unless both are static and differ.
bool dimsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

bool isSupportedElementType(Type t) { return t.isF16() || t.isBF16() || t.isF32(); }

/// Checks one of the rank-4 [B, H, S, D] operands: rank, element type, static
/// and contiguous head dimension. `ref` is the element type it must share
/// (null for the query itself).
LogicalResult verifyHeadOperand(Operation *op, StringRef name, Value v,
                                Type refElementType) {
  auto type = cast<MemRefType>(v.getType());
  if (type.getRank() != 4)
    return op->emitOpError() << name << " must be a rank-4 memref [B, H, S, D], got "
                             << type;
  Type et = type.getElementType();
  if (!refElementType && !isSupportedElementType(et))
    return op->emitOpError() << "element type of " << name
                             << " must be f16, bf16 or f32, got " << et;
  if (refElementType && et != refElementType)
    return op->emitOpError() << "element type of " << name << " (" << et
                             << ") must equal the element type of query ("
                             << refElementType << ")";
  if (type.isDynamicDim(3))
    return op->emitOpError() << "head dimension of " << name
                             << " must be static, got " << type;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)) || strides[3] != 1)
    return op->emitOpError() << "head dimension of " << name
                             << " must be contiguous (innermost stride 1), got "
                             << type;
  return success();
}

/// Compares dimension `dim` of two operands.
LogicalResult expectSameDim(Operation *op, StringRef what, StringRef name,
                            Value v, StringRef refName, Value ref, unsigned dim,
                            unsigned refDim) {
  int64_t a = cast<MemRefType>(v.getType()).getDimSize(dim);
  int64_t b = cast<MemRefType>(ref.getType()).getDimSize(refDim);
  if (dimsAgree(a, b))
    return success();
  return op->emitOpError() << what << " of " << name << " (" << a
                           << ") must equal " << what << " of " << refName
                           << " (" << b << ")";
}

/// Checks an auxiliary operand against a full expected shape and element type.
LogicalResult expectShape(Operation *op, StringRef name, Value v, Type elementType,
                          ArrayRef<int64_t> expected, StringRef description) {
  auto type = cast<MemRefType>(v.getType());
  bool ok = type.getElementType() == elementType &&
            type.getRank() == static_cast<int64_t>(expected.size());
  for (unsigned i = 0; ok && i < expected.size(); ++i)
    ok = dimsAgree(type.getDimSize(i), expected[i]);
  if (ok)
    return success();
  return op->emitOpError() << name << " must be a " << elementType << " memref "
                           << description << " = " << shapeToString(expected)
                           << ", got " << type;
}

LogicalResult verifyPositiveFinite(Operation *op, StringRef name,
                                   std::optional<APFloat> value) {
  if (!value)
    return success();
  double d = value->convertToDouble();
  if (std::isfinite(d) && d > 0)
    return success();
  return op->emitOpError() << name << " must be a positive finite number, got "
                           << d;
}

int64_t dimOf(Value v, unsigned i) {
  return cast<MemRefType>(v.getType()).getDimSize(i);
}

/// ceil(n / block) for a static n, dynamic otherwise.
int64_t ceilDivDim(int64_t n, int64_t block) {
  return ShapedType::isDynamic(n) ? ShapedType::kDynamic : (n + block - 1) / block;
}

/// Shared by the linear variants: q, k, v, out with equal heads and lengths.
LogicalResult verifyLinearOperands(Operation *op, Value q, Value k, Value v,
                                   Value out) {
  if (failed(verifyHeadOperand(op, "query", q, nullptr)))
    return failure();
  Type et = cast<MemRefType>(q.getType()).getElementType();
  if (failed(verifyHeadOperand(op, "key", k, et)) ||
      failed(verifyHeadOperand(op, "value", v, et)) ||
      failed(verifyHeadOperand(op, "out", out, et)))
    return failure();
  if (failed(expectSameDim(op, "batch size", "key", k, "query", q, 0, 0)) ||
      failed(expectSameDim(op, "batch size", "value", v, "query", q, 0, 0)) ||
      failed(expectSameDim(op, "head count", "key", k, "query", q, 1, 1)) ||
      failed(expectSameDim(op, "head count", "value", v, "query", q, 1, 1)) ||
      failed(expectSameDim(op, "sequence length", "key", k, "query", q, 2, 2)) ||
      failed(expectSameDim(op, "sequence length", "value", v, "query", q, 2, 2)) ||
      failed(expectSameDim(op, "head dim", "key", k, "query", q, 3, 3)))
    return failure();
  SmallVector<int64_t> outShape = {dimOf(q, 0), dimOf(q, 1), dimOf(q, 2),
                                   dimOf(v, 3)};
  return expectShape(op, "out", out, et, outShape, "[B, H, S, Dv]");
}

LogicalResult verifyStates(Operation *op, Value q, Value v, Value initial,
                           Value final) {
  Type f32 = Float32Type::get(op->getContext());
  SmallVector<int64_t> shape = {dimOf(q, 0), dimOf(q, 1), dimOf(q, 3), dimOf(v, 3)};
  if (initial && failed(expectShape(op, "initial_state", initial, f32, shape,
                                    "[B, H, Dqk, Dv]")))
    return failure();
  if (final && failed(expectShape(op, "final_state", final, f32, shape,
                                  "[B, H, Dqk, Dv]")))
    return failure();
  return success();
}

double defaultScale(Value query, std::optional<APFloat> scale) {
  if (scale)
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(dimOf(query, 3)));
}

} // namespace

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

double AttentionOp::getEffectiveScale() {
  return defaultScale(getQuery(), getScale());
}

int64_t AttentionOp::getGroupSize() {
  int64_t hq = dimOf(getQuery(), 1), hkv = dimOf(getKey(), 1);
  if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
    return ShapedType::kDynamic;
  return hq / hkv;
}

LogicalResult AttentionOp::verify() {
  Operation *op = getOperation();
  Value q = getQuery(), k = getKey(), v = getValue(), out = getOut();
  if (failed(verifyHeadOperand(op, "query", q, nullptr)))
    return failure();
  Type et = cast<MemRefType>(q.getType()).getElementType();
  if (failed(verifyHeadOperand(op, "key", k, et)) ||
      failed(verifyHeadOperand(op, "value", v, et)) ||
      failed(verifyHeadOperand(op, "out", out, et)))
    return failure();

  if (failed(expectSameDim(op, "batch size", "key", k, "query", q, 0, 0)) ||
      failed(expectSameDim(op, "batch size", "value", v, "query", q, 0, 0)) ||
      failed(expectSameDim(op, "head dim", "key", k, "query", q, 3, 3)) ||
      failed(expectSameDim(op, "head count", "value", v, "key", k, 1, 1)) ||
      failed(expectSameDim(op, "sequence length", "value", v, "key", k, 2, 2)))
    return failure();

  int64_t hq = dimOf(q, 1), hkv = dimOf(k, 1);
  if (!ShapedType::isDynamic(hkv) && hkv <= 0)
    return emitOpError() << "key must have at least one head, got " << hkv;
  if (!ShapedType::isDynamic(hq) && !ShapedType::isDynamic(hkv) && hq % hkv != 0)
    return emitOpError() << "query heads (" << hq
                         << ") must be a multiple of key/value heads (" << hkv
                         << ")";

  int64_t b = dimOf(q, 0), sq = dimOf(q, 2), sk = dimOf(k, 2);
  SmallVector<int64_t> outShape = {b, hq, sq, dimOf(v, 3)};
  if (failed(expectShape(op, "out", out, et, outShape, "[B, Hq, Sq, Dv]")))
    return failure();
  Type f32 = Float32Type::get(getContext());
  if (getLse() && failed(expectShape(op, "lse", getLse(), f32, {b, hq, sq},
                                     "[B, Hq, Sq]")))
    return failure();

  if (failed(verifyPositiveFinite(op, "scale", getScale())) ||
      failed(verifyPositiveFinite(op, "softcap", getSoftcap())))
    return failure();

  if (auto window = getWindowAttr()) {
    if (window.getLeft() < 0)
      return emitOpError() << "window left bound must be non-negative, got "
                           << window.getLeft();
    if (window.getRight() < 0)
      return emitOpError() << "window right bound must be non-negative, got "
                           << window.getRight();
  }

  // Block-sparse layout: attribute and operand come together.
  auto blockSparse = getBlockSparseAttr();
  if (getBlockMask() && !blockSparse)
    return emitOpError()
           << "block_mask operand requires the block_sparse attribute (its block sizes)";
  if (blockSparse && !getBlockMask())
    return emitOpError() << "block_sparse attribute requires a block_mask operand";
  if (blockSparse) {
    if (blockSparse.getBlockQ() <= 0 || blockSparse.getBlockK() <= 0)
      return emitOpError() << "block_sparse block sizes must be positive, got block_q = "
                           << blockSparse.getBlockQ()
                           << ", block_k = " << blockSparse.getBlockK();
    auto maskType = cast<MemRefType>(getBlockMask().getType());
    Type i8 = IntegerType::get(getContext(), 8);
    if (maskType.getRank() != 4 || maskType.getElementType() != i8)
      return emitOpError() << "block_mask must be an i8 memref of rank 4 [B or 1, "
                              "Hq or 1, ceil(Sq / block_q), ceil(Sk / block_k)], got "
                           << maskType;
    int64_t mb = maskType.getDimSize(0), mh = maskType.getDimSize(1);
    if (!ShapedType::isDynamic(mb) && mb != 1 && !dimsAgree(mb, b))
      return emitOpError() << "dimension 0 of block_mask (" << mb
                           << ") must be 1 or the batch size (" << b << ")";
    if (!ShapedType::isDynamic(mh) && mh != 1 && !dimsAgree(mh, hq))
      return emitOpError() << "dimension 1 of block_mask (" << mh
                           << ") must be 1 or the query head count (" << hq << ")";
    int64_t rows = ceilDivDim(sq, blockSparse.getBlockQ());
    int64_t cols = ceilDivDim(sk, blockSparse.getBlockK());
    if (!dimsAgree(maskType.getDimSize(2), rows))
      return emitOpError() << "dimension 2 of block_mask (" << maskType.getDimSize(2)
                           << ") must be ceil(Sq / block_q) = ceil(" << sq << " / "
                           << blockSparse.getBlockQ() << ") = " << rows;
    if (!dimsAgree(maskType.getDimSize(3), cols))
      return emitOpError() << "dimension 3 of block_mask (" << maskType.getDimSize(3)
                           << ") must be ceil(Sk / block_k) = ceil(" << sk << " / "
                           << blockSparse.getBlockK() << ") = " << cols;
  }

  // Document ids for packed sequences.
  if (static_cast<bool>(getQDocIds()) != static_cast<bool>(getKvDocIds()))
    return emitOpError() << "q_doc_ids and kv_doc_ids must be given together";
  if (getQDocIds()) {
    Type i32 = IntegerType::get(getContext(), 32);
    if (failed(expectShape(op, "q_doc_ids", getQDocIds(), i32, {b, sq}, "[B, Sq]")) ||
        failed(expectShape(op, "kv_doc_ids", getKvDocIds(), i32, {b, sk}, "[B, Sk]")))
      return failure();
  }

  if (Value slopes = getAlibiSlopes()) {
    auto type = cast<MemRefType>(slopes.getType());
    SmallVector<int64_t> expected =
        type.getRank() == 2 ? SmallVector<int64_t>{b, hq} : SmallVector<int64_t>{hq};
    if (failed(expectShape(op, "alibi_slopes", slopes, f32, expected,
                           type.getRank() == 2 ? "[B, Hq]" : "[Hq]")))
      return failure();
  }

  if (!getCaptures().empty() && getScoreMod().empty() && getMaskMod().empty())
    return emitOpError() << "captures are read only by score_mod or mask_mod "
                            "regions, and this op has neither";
  return success();
}

/// Checks a score_mod / mask_mod region: one block, the index arguments, an
/// optional score, one argument per capture, and one yielded value.
static LogicalResult verifyModRegion(AttentionOp op, Region &region,
                                     StringRef name, bool takesScore,
                                     Type yieldType) {
  if (region.empty())
    return success();
  MLIRContext *ctx = op.getContext();
  Type index = IndexType::get(ctx), f32 = Float32Type::get(ctx);
  SmallVector<Type> expected(AttentionOp::kNumIndexArgs, index);
  if (takesScore)
    expected.push_back(f32);
  for (Value capture : op.getCaptures())
    expected.push_back(capture.getType());

  std::string signature;
  llvm::raw_string_ostream os(signature);
  os << "(b: index, h: index, q: index, k: index"
     << (takesScore ? ", score: f32" : "") << ")";
  if (!op.getCaptures().empty())
    os << " followed by the " << op.getCaptures().size() << " capture type(s)";

  if (!region.hasOneBlock())
    return op.emitOpError() << name << " region must have exactly one block";
  Block &block = region.front();
  if (block.getNumArguments() != expected.size())
    return op.emitOpError() << name << " region must take " << signature
                            << ": expected " << expected.size()
                            << " arguments, got " << block.getNumArguments();
  for (auto [i, arg, type] : llvm::enumerate(block.getArguments(), expected))
    if (arg.getType() != type)
      return op.emitOpError() << "argument #" << i << " of the " << name
                              << " region must be " << type << ", got "
                              << arg.getType() << "; the region takes " << signature;
  auto yield = block.empty() ? YieldOp() : dyn_cast<YieldOp>(block.back());
  if (!yield)
    return op.emitOpError() << name << " region must end with attn.yield";
  if (yield.getValues().size() != 1 || yield.getValues()[0].getType() != yieldType)
    return op.emitOpError() << name << " region must yield exactly one "
                            << yieldType << ", got " << yield.getValues().size()
                            << " value(s) of type(s) (" << yield.getValues().getTypes()
                            << ")";
  return success();
}

LogicalResult AttentionOp::verifyRegions() {
  MLIRContext *ctx = getContext();
  if (failed(verifyModRegion(*this, getScoreMod(), "score_mod", /*takesScore=*/true,
                             Float32Type::get(ctx))))
    return failure();
  return verifyModRegion(*this, getMaskMod(), "mask_mod", /*takesScore=*/false,
                         IntegerType::get(ctx, 1));
}

//===----------------------------------------------------------------------===//
// LinearAttentionOp
//===----------------------------------------------------------------------===//

double LinearAttentionOp::getEffectiveScale() {
  return defaultScale(getQuery(), getScale());
}

LogicalResult LinearAttentionOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyLinearOperands(op, getQuery(), getKey(), getValue(), getOut())) ||
      failed(verifyStates(op, getQuery(), getValue(), getInitialState(),
                          getFinalState())) ||
      failed(verifyPositiveFinite(op, "scale", getScale())))
    return failure();
  if (getNormalize() && (getInitialState() || getFinalState()))
    return emitOpError() << "normalize cannot be combined with initial_state or "
                            "final_state: the normalizer is not part of the "
                            "carried state";
  return success();
}

//===----------------------------------------------------------------------===//
// GatedLinearAttentionOp
//===----------------------------------------------------------------------===//

double GatedLinearAttentionOp::getEffectiveScale() {
  return defaultScale(getQuery(), getScale());
}

LogicalResult GatedLinearAttentionOp::verify() {
  Operation *op = getOperation();
  Value q = getQuery(), v = getValue();
  if (failed(verifyLinearOperands(op, q, getKey(), v, getOut())) ||
      failed(verifyStates(op, q, v, getInitialState(), getFinalState())) ||
      failed(verifyPositiveFinite(op, "scale", getScale())))
    return failure();
  Type f32 = Float32Type::get(getContext());
  int64_t b = dimOf(q, 0), h = dimOf(q, 1), s = dimOf(q, 2), d = dimOf(q, 3);
  switch (getGate()) {
  case GateKind::Scalar:
    return expectShape(op, "gates", getGates(), f32, {b, h, s},
                       "[B, H, S] (gate = scalar)");
  case GateKind::Vector:
    return expectShape(op, "gates", getGates(), f32, {b, h, s, d},
                       "[B, H, S, Dqk] (gate = vector)");
  case GateKind::HeadConstant:
    return expectShape(op, "gates", getGates(), f32, {h}, "[H] (gate = head_constant)");
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Tiled-level ops
//===----------------------------------------------------------------------===//

/// Checks a rank-`rank` f32 memref operand of the online-softmax state.
static LogicalResult expectF32Rank(Operation *op, StringRef name, Value v,
                                   int64_t rank) {
  auto type = cast<MemRefType>(v.getType());
  if (type.getRank() == rank && type.getElementType().isF32())
    return success();
  return op->emitOpError() << name << " must be a rank-" << rank
                           << " f32 memref, got " << type;
}

LogicalResult OnlineSoftmaxOp::verify() {
  Operation *op = getOperation();
  if (failed(expectF32Rank(op, "scores", getScores(), 2)) ||
      failed(expectF32Rank(op, "max", getMax(), 1)) ||
      failed(expectF32Rank(op, "sum", getSum(), 1)) ||
      failed(expectF32Rank(op, "acc", getAcc(), 2)))
    return failure();
  auto value = cast<MemRefType>(getValue().getType());
  if (value.getRank() != 2)
    return emitOpError() << "value must be a rank-2 memref [c, Dv], got " << value;
  if (!dimsAgree(dimOf(getScores(), 1), value.getDimSize(0)))
    return emitOpError() << "value rows (" << value.getDimSize(0)
                         << ") must equal score columns (" << dimOf(getScores(), 1)
                         << ")";
  if (!dimsAgree(dimOf(getAcc(), 1), value.getDimSize(1)))
    return emitOpError() << "acc columns (" << dimOf(getAcc(), 1)
                         << ") must equal value columns (" << value.getDimSize(1)
                         << ")";
  return success();
}

LogicalResult SoftmaxFinalizeOp::verify() {
  Operation *op = getOperation();
  if (failed(expectF32Rank(op, "max", getMax(), 1)) ||
      failed(expectF32Rank(op, "sum", getSum(), 1)) ||
      failed(expectF32Rank(op, "acc", getAcc(), 2)) ||
      (getLse() && failed(expectF32Rank(op, "lse", getLse(), 1))))
    return failure();
  auto out = cast<MemRefType>(getOut().getType());
  if (out.getRank() != 2 || !isa<FloatType>(out.getElementType()))
    return emitOpError() << "out must be a rank-2 float memref [r, Dv], got " << out;
  if (!dimsAgree(dimOf(getAcc(), 1), out.getDimSize(1)))
    return emitOpError() << "out columns (" << out.getDimSize(1)
                         << ") must equal acc columns (" << dimOf(getAcc(), 1) << ")";
  return success();
}
