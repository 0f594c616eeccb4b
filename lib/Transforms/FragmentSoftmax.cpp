//===- FragmentSoftmax.cpp - online softmax on tensor-core accumulators ---===//

#include "FragmentSoftmax.h"
#include "PtxEmitter.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Matchers.h"

namespace attn {

/// 2^x as one MUFU.EX2: ex2.approx.ftz.f32. math.exp2 becomes the non-ftz
/// ex2.approx.f32, which ptxas wraps in a denormal range check (a compare and
/// two predicated multiplies per element); a softmax weight below 2^-126 is
/// zero for every purpose here. Kept as an intrinsic (not inline PTX) so LLVM
/// still sees a pure operation. Vectors are done element by element (as the
/// NVVM lowering of math.exp2 does).
/// One f32 NVVM approximation (one MUFU op), as an intrinsic call.
static Value nvvmApprox(ImplicitLocOpBuilder &b, StringRef intrinsic, Value x) {
  return LLVM::CallIntrinsicOp::create(b, b.getF32Type(), b.getStringAttr(intrinsic),
                                       ValueRange{x})
      .getResult(0);
}

Value fastExp2(ImplicitLocOpBuilder &b, Value x) {
  if (auto vt = dyn_cast<VectorType>(x.getType())) {
    SmallVector<Value> elems;
    for (int64_t i = 0; i < vt.getNumElements(); ++i)
      elems.push_back(fastExp2(b, vector::ExtractOp::create(b, x, i)));
    return vector::FromElementsOp::create(b, vt, elems);
  }
  return nvvmApprox(b, "llvm.nvvm.ex2.approx.ftz.f32", x);
}

Value polyExp2(ImplicitLocOpBuilder &b, Value x) {
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto f = [&](double v) { return arith::ConstantOp::create(b, b.getF32FloatAttr(v)); };
  // x + 1.5 * 2^23 rounds to nearest and leaves round(x) in the low mantissa
  // bits; subtracting it back gives round(x) as a float (no fast-math flags:
  // LLVM keeps both additions).
  Value magic = f(12582912.0);
  Value shifted = arith::AddFOp::create(b, x, magic);
  Value rounded = arith::SubFOp::create(b, shifted, magic);
  Value frac = arith::SubFOp::create(b, x, rounded);
  // Minimax (relative) on [-0.5, 0.5], f32 coefficients.
  Value poly = f(0.05517132207751274);
  for (double c : {0.24261054396629333, 0.6932609677314758, 0.9999281167984009})
    poly = math::FmaOp::create(b, poly, frac, f(c));
  // + round(x) in the exponent: the low 9 bits of `shifted` are round(x)
  // mod 512, so shifting them into bits 23.. and adding wraps to the right
  // exponent for every round(x) in [-125, 8].
  Value exponent = arith::ShLIOp::create(b, arith::BitcastOp::create(b, i32, shifted),
                                         arith::ConstantIntOp::create(b, i32, 23));
  Value scaled = arith::BitcastOp::create(
      b, f32, arith::AddIOp::create(b, arith::BitcastOp::create(b, i32, poly), exponent));
  Value tiny = arith::CmpFOp::create(b, arith::CmpFPredicate::ULT, x, f(-125.0));
  return arith::SelectOp::create(b, tiny, f(0.0), scaled);
}

FragmentBuilder::FragmentBuilder(ImplicitLocOpBuilder &b, Type elem)
    : b(b), elem(elem), f32(b.getF32Type()) {}

Value FragmentBuilder::packF32(Value x, Value y, bool asI32) {
  Value v = vector::FromElementsOp::create(b, VectorType::get({2}, f32), ValueRange{x, y});
  v = arith::TruncFOp::create(b, VectorType::get({2}, elem), v);
  return packVector(v, asI32);
}

Value FragmentBuilder::packVector(Value v2, bool asI32) {
  if (elem.isF16() && !asI32)
    return v2;
  Value asInt = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), v2);
  return vector::ExtractOp::create(b, asInt, 0);
}

Value FragmentBuilder::quadReduce(Value v, bool isMax) {
  for (int32_t offset : {1, 2}) {
    Value other =
        gpu::ShuffleOp::create(b, v, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult();
    v = isMax ? (Value)arith::MaximumFOp::create(b, v, other)
              : (Value)arith::AddFOp::create(b, v, other);
  }
  return v;
}

SmallVector<Value> SoftmaxState::flatten() const {
  SmallVector<Value> flat = {max[0], max[1], sum[0], sum[1]};
  flat.append(o.begin(), o.end());
  return flat;
}

SoftmaxState SoftmaxState::unflatten(ValueRange values) {
  SoftmaxState s;
  s.max[0] = values[0];
  s.max[1] = values[1];
  s.sum[0] = values[2];
  s.sum[1] = values[3];
  s.o.assign(values.begin() + 4, values.end());
  return s;
}

SoftmaxState SoftmaxState::initial(LoopBuilder &lb, int64_t oValues) {
  SoftmaxState s;
  s.max[0] = s.max[1] = lb.negInf();
  s.sum[0] = s.sum[1] = lb.f32(0.0);
  s.o.assign(oValues, lb.f32(0.0));
  return s;
}

FragmentSoftmax::FragmentSoftmax(KernelBuilder &kb, FragmentBuilder &fb, ScoreEmitter &emitter,
                                 AttentionOp op, Value batch, Value head, Value seqQ,
                                 Value seqK, std::array<Value, 2> rows, Value t2,
                                 bool tileOffsetMasks, bool blockMaskPerTile)
    : kb(kb), fb(fb), emitter(emitter), op(op), batch(batch), head(head), seqQ(seqQ),
      seqK(seqK), t2(t2), rows(rows), rawScale(emitter.linearScale()),
      tileOffsetMasks(tileOffsetMasks), blockMaskPerTile(blockMaskPerTile) {
  ImplicitLocOpBuilder &b = kb.b;
  // Soft-cap alone: the raw score is tanh(a q.k), its base-2 score c times it.
  if (!rawScale)
    if (auto scales = emitter.softcapScales()) {
      softcapInner = scales->first;
      rawScale = scales->second;
    }
  // Rows past Sq compute on zeros and are never stored; their masks and
  // score functions are evaluated at a valid row so no input is over-read.
  Value lastRow = arith::SubIOp::create(b, seqQ, kb.lb.index(1));
  for (int r = 0; r < 2; ++r)
    evalRows[r] = arith::MinSIOp::create(b, rows[r], lastRow);
  // ALiBi under a causal-type mask: -slope (row' - col), row' = row + Sk - Sq,
  // is slope (col - base) - slope (row' - base). The second term is one
  // constant per row, which softmax does not see, so the kernel adds only the
  // first: one value per column (shared by the lane's two rows) instead of a
  // distance per element, and no |.|. base = row 0's diagonal keeps the terms
  // as small as the distances (row 0's scores are its true ones; row 1, 8
  // rows further, gets 8 slopes more); the tile's bias, rounded once, errs
  // by about as much as a key's own bias, or slope * 2^-24 * 256 near the
  // diagonal, where the weights are.
  if ((alibiShiftScale = emitter.rowShiftedAlibiScale())) {
    alibiSlopeLog2 = arith::MulFOp::create(b, emitter.alibiSlope(batch, head),
                                           kb.lb.f32(kLog2e));
    alibiBase = arith::SubIOp::create(b, arith::AddIOp::create(b, evalRows[0], seqK), seqQ);
  }
}

SmallVector<Value> FragmentSoftmax::scores(ArrayRef<Value> acc, Value colBegin, Value needMask,
                                           const std::function<Value(int64_t)> &kvDocIdAt) {
  ImplicitLocOpBuilder &b = kb.b;
  LoopBuilder &lb = kb.lb;
  Value lastCol = arith::SubIOp::create(b, seqK, lb.index(1));
  IntegerAttr maskConstant;
  bool maskKnown = matchPattern(needMask, m_Constant(&maskConstant));
  bool maskAlways = maskKnown && maskConstant.getValue().getBoolValue();
  // Row-shifted ALiBi (see the constructor): slope log2(e) (col - base) at
  // the lane's first key of the tile, from one exact conversion per tile;
  // then one FFMA per column (below) and one per element (s c + bias).
  Value alibiTileBias;
  SmallVector<Value> alibiColBias(acc.size() / 2);
  if (alibiShiftScale) {
    Value rel = arith::SubIOp::create(b, arith::AddIOp::create(b, colBegin, t2), alibiBase);
    alibiTileBias = arith::MulFOp::create(b, alibiSlopeLog2, lb.indexToF32(rel));
  }
  // Otherwise ALiBi's distance |row + Sk - Sq - col| in f32 (exact below
  // 2^24): one conversion per row and per tile, then one subtraction per
  // element.
  Value diagF[2], colBaseF;
  if (op.getAlibiSlopes() && !alibiShiftScale) {
    for (int r = 0; r < 2; ++r)
      diagF[r] = lb.indexToF32(arith::SubIOp::create(
          b, arith::AddIOp::create(b, evalRows[r], seqK), seqQ));
    colBaseF = lb.indexToF32(arith::AddIOp::create(b, colBegin, t2));
  }
  // The diagonal bounds and the sequence end leave each row one interval of
  // keys [lo, hi]; in a statically masked tile: the bounds relative to
  // colBegin, clamped to [-1, keys] where keys = the tile's length, once per
  // row and tile; per element then one i32 compare of the key's offset in
  // the tile (two with a window), instead of 64-bit column math, a clamp to
  // Sk - 1 and a compare per bound. Exact: offsets lie in [0, keys), where
  // the clamped and the unclamped bounds decide alike. The other masks
  // (documents, mask_mod; the block layout unless the kernel skips the
  // tiles of empty blocks) are still tested per element, at min(col, Sk - 1).
  int64_t keys = int64_t(acc.size()) / 4 * 8;
  Value relLo[2], relHi[2], t2i32;
  bool offsetMasks = false;
  if (tileOffsetMasks && maskAlways) {
    Type i32 = b.getI32Type();
    auto relative = [&](Value bound, int64_t low) {
      Value rel = arith::SubIOp::create(b, bound, colBegin);
      rel = arith::MaxSIOp::create(b, arith::MinSIOp::create(b, rel, lb.index(keys)),
                                   lb.index(low));
      return arith::IndexCastOp::create(b, i32, rel).getResult();
    };
    offsetMasks = true;
    for (int r = 0; r < 2; ++r) {
      auto [lo, hi] = emitter.visibleInterval(evalRows[r]);
      relHi[r] = relative(hi, -1);
      if (lo)
        relLo[r] = relative(lo, 0);
    }
    t2i32 = arith::IndexCastOp::create(b, i32, t2);
  }
  // Whether the key indexes loads: document ids, or a load in a score or
  // mask function (a tensor read at k).
  auto regionLoads = [](Region &region) {
    bool loads = false;
    region.walk([&](memref::LoadOp) { loads = true; });
    return loads;
  };
  bool columnLoads = op.getQDocIds() || regionLoads(op.getScoreMod()) ||
                     regionLoads(op.getMaskMod());
  // The lane's first key of the tile and how far past it Sk - 1 lies (i32).
  Value laneColBegin = arith::AddIOp::create(b, colBegin, t2);
  Value laneColLimit = arith::IndexCastOp::create(
      b, b.getI32Type(), arith::SubIOp::create(b, lastCol, laneColBegin));
  // With the key ids supplied (kvDocIdAt, as inline asm the compiler may
  // not move loads across), the rows' two ids are loaded once here: left to
  // visible(), each column pair reloaded them.
  bool suppliedDocIds = kvDocIdAt && op.getQDocIds() && maskAlways;
  Value qDocIds[2];
  if (suppliedDocIds)
    for (int r = 0; r < 2; ++r)
      qDocIds[r] = memref::LoadOp::create(b, emitter.operand(op.getQDocIds()),
                                          ValueRange{batch, evalRows[r]});
  SmallVector<Value> s;
  for (int64_t i = 0; i < int64_t(acc.size()); ++i) {
    int64_t tile = i / 4, e = i % 4;
    Value row = evalRows[e / 2];
    Value col = arith::AddIOp::create(
        b, colBegin, arith::AddIOp::create(b, lb.index(tile * 8 + e % 2), t2));
    // Keys past Sk (a partial last tile) are masked below; score functions
    // and masks are evaluated at a valid key so that a captured tensor
    // indexed by k is never over-read: min(col, Sk - 1). Where the key
    // indexes loads (document ids, a tensor read in a score or mask
    // function), it is the lane's first key of the tile plus min(offset, its
    // limit) in i32: the 32 columns a lane holds share one 64-bit base and
    // each costs one IMNMX with an immediate and one IMAD.WIDE, against a
    // 64-bit min and address per column. Where it only enters arithmetic
    // (a mask_mod of q and k), the 64-bit min stays: there the i32 form
    // spilled the 64-key kernel of test/Target/Inputs/heavy_scores_no_tensor.json.
    Value colEval =
        columnLoads
            ? (Value)arith::AddIOp::create(
                  b, laneColBegin,
                  arith::IndexCastOp::create(
                      b, b.getIndexType(),
                      arith::MinSIOp::create(
                          b, arith::ConstantIntOp::create(b, b.getI32Type(), tile * 8 + e % 2),
                          laneColLimit)))
            : (Value)arith::MinSIOp::create(b, col, lastCol);
    Value alibiDistance;
    if (colBaseF) {
      Value colF = arith::AddFOp::create(b, colBaseF, lb.f32(double(tile * 8 + e % 2)));
      alibiDistance = math::AbsFOp::create(b, arith::SubFOp::create(b, diagF[e / 2], colF));
    }
    Value score;
    if (alibiTileBias) {
      // Rows e / 2 = 0, 1 share the column's bias.
      Value &colBias = alibiColBias[tile * 2 + e % 2];
      if (!colBias)
        colBias = tile * 8 + e % 2 == 0
                      ? alibiTileBias
                      : (Value)math::FmaOp::create(b, alibiSlopeLog2,
                                                   lb.f32(double(tile * 8 + e % 2)),
                                                   alibiTileBias);
      score = math::FmaOp::create(b, acc[i], lb.f32(*alibiShiftScale), colBias);
    } else {
      score = softcapInner
                  ? (Value)math::TanhOp::create(
                        b, arith::MulFOp::create(b, acc[i], lb.f32(*softcapInner)))
              : rawScale ? acc[i]
                         : emitter.score(acc[i], batch, head, row, colEval, alibiDistance);
    }
    // The ids visible() compares (null: it loads them).
    MaskParts docIds;
    if (suppliedDocIds) {
      docIds.kvDocId = kvDocIdAt(tile * 8 + e % 2);
      docIds.qDocId = qDocIds[e / 2];
    }
    auto maskedScore = [&] {
      if (offsetMasks) {
        Value offset = arith::AddIOp::create(
            b, t2i32, arith::ConstantIntOp::create(b, tile * 8 + e % 2, 32));
        Value vis = arith::CmpIOp::create(b, arith::CmpIPredicate::sle, offset, relHi[e / 2]);
        if (relLo[e / 2])
          vis = arith::AndIOp::create(
              b, vis, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, offset, relLo[e / 2]));
        MaskParts rest{/*diagonal=*/false, /*blockMask=*/!blockMaskPerTile, docIds.kvDocId,
                       docIds.qDocId};
        if (emitter.hasMasks(rest))
          vis = arith::AndIOp::create(b, vis, emitter.visible(batch, head, row, colEval, rest));
        return arith::SelectOp::create(b, vis, score, lb.negInf()).getResult();
      }
      Value inSeq = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, col, seqK);
      Value vis =
          arith::AndIOp::create(b, inSeq, emitter.visible(batch, head, row, colEval, docIds));
      return arith::SelectOp::create(b, vis, score, lb.negInf()).getResult();
    };
    // A mask known statically (the Hopper kernel's masked and unmasked copies)
    // is emitted as such: an unmasked tile carries no mask code at all, which
    // LLVM could otherwise hoist into both copies.
    if (maskKnown)
      s.push_back(maskAlways ? maskedScore() : score);
    else
      s.push_back(kb.ifWithResults(
          needMask, {b.getF32Type()}, [&] { return SmallVector<Value>{maskedScore()}; },
          [&] { return SmallVector<Value>{score}; })[0]);
  }
  return s;
}

SoftmaxState FragmentSoftmax::update(const SoftmaxState &state, ArrayRef<Value> s,
                                     SmallVector<Value> &p, bool lazyRescale,
                                     int64_t polyExp2Eighths) {
  ImplicitLocOpBuilder &b = kb.b;
  LoopBuilder &lb = kb.lb;
  SoftmaxState next;
  Value alpha[2], grown[2];
  int64_t nTiles = s.size() / 4;
  // Base-2 online softmax per row. A row that has seen only -inf keeps max
  // -inf; its exponents are taken against 0 instead, so exp2(-inf - 0) = 0
  // gives p = 0 and alpha = 0 (O and the sum are still 0) with no per-element
  // guard. With raw scores (rawScale = c > 0) the tile max is taken on the
  // raw products (max(x) c = max(x c)), the running max stays base 2, and
  // each weight is exp2(fma(x, c, -max)).
  Value base[2], negBase[2];
  for (int r = 0; r < 2; ++r) {
    // One chain: two (or four, or a tree) measured no faster on the H200 and
    // causal D = 64 at 4k 3% slower (bench/NOTES.md, session 14); the 192-row
    // kernel spilled with any of them.
    Value m = rawScale ? Value() : state.max[r];
    for (int64_t j = 0; j < nTiles; ++j)
      for (int64_t e = 2 * r; e < 2 * r + 2; ++e)
        m = m ? (Value)arith::MaximumFOp::create(b, m, s[j * 4 + e]) : s[j * 4 + e];
    m = fb.quadReduce(m, /*isMax=*/true);
    if (rawScale)
      m = arith::MaximumFOp::create(
          b, state.max[r], arith::MulFOp::create(b, m, lb.f32(*rawScale)));
    if (lazyRescale) {
      // Grow only past the headroom. A row that has seen nothing (-inf) grows
      // on its first finite score (-inf + 8 = -inf < m).
      grown[r] = arith::CmpFOp::create(
          b, arith::CmpFPredicate::OGT, m,
          arith::AddFOp::create(b, state.max[r], lb.f32(kLazyRescaleLog2)));
      m = arith::SelectOp::create(b, grown[r], m, state.max[r]);
    }
    next.max[r] = m;
    Value noneSeen =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, next.max[r], lb.negInf());
    base[r] = arith::SelectOp::create(b, noneSeen, lb.f32(0.0), next.max[r]);
    negBase[r] = arith::NegFOp::create(b, base[r]);
    alpha[r] = fastExp2(b, arith::AddFOp::create(b, state.max[r], negBase[r]));
    // A kept max gives alpha = 1 exactly (also for a row still at -inf,
    // whose sum and O are 0 anyway).
    if (lazyRescale)
      alpha[r] = arith::SelectOp::create(b, grown[r], alpha[r], lb.f32(1.0));
  }
  if (lazyRescale) {
    Value anyGrown = arith::OrIOp::create(b, grown[0], grown[1]);
    Value fullMask = arith::ConstantIntOp::create(b, b.getI32Type(), -1);
    next.rescale = NVVM::VoteSyncOp::create(b, b.getI1Type(), fullMask, anyGrown,
                                            NVVM::VoteSyncKind::any);
  }
  p.assign(s.size(), Value());
  Value rowSum[2] = {lb.f32(0.0), lb.f32(0.0)};
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    int64_t r = (i % 4) / 2;
    Value exponent = rawScale ? (Value)math::FmaOp::create(b, s[i], lb.f32(*rawScale), negBase[r])
                              : (Value)arith::AddFOp::create(b, s[i], negBase[r]);
    p[i] = i % 8 < polyExp2Eighths ? polyExp2(b, exponent) : fastExp2(b, exponent);
    rowSum[r] = arith::AddFOp::create(b, rowSum[r], p[i]);
  }
  for (int r = 0; r < 2; ++r)
    next.sum[r] =
        arith::AddFOp::create(b, arith::MulFOp::create(b, state.sum[r], alpha[r]), rowSum[r]);
  // With lazyRescale the caller rescales O (under next.rescale); `o` may be
  // in flight on the tensor cores here.
  if (!lazyRescale)
    for (int64_t i = 0; i < int64_t(state.o.size()); ++i)
      next.o.push_back(arith::MulFOp::create(b, state.o[i], alpha[(i % 4) / 2]));
  next.alpha[0] = alpha[0];
  next.alpha[1] = alpha[1];
  return next;
}

std::array<Value, 4> FragmentSoftmax::pOperand(ArrayRef<Value> p, int64_t u, bool asI32) {
  const Value *lo = &p[(2 * u) * 4], *hi = &p[(2 * u + 1) * 4];
  return {fb.packF32(lo[0], lo[1], asI32), fb.packF32(lo[2], lo[3], asI32),
          fb.packF32(hi[0], hi[1], asI32), fb.packF32(hi[2], hi[3], asI32)};
}

void FragmentSoftmax::finalize(const SoftmaxState &state, Value out, Value lse,
                               const OutputStaging *staging) {
  ImplicitLocOpBuilder &b = kb.b;
  LoopBuilder &lb = kb.lb;
  Type f32 = fb.f32;
  Type outEt = cast<MemRefType>(out.getType()).getElementType();
  int64_t nTilesO = state.o.size() / 4;
  // Everything both rows need comes first, the stores last. A store holds its
  // address and data registers until the LSU has read them, and ptxas gave
  // the next row's shuffles and log the same registers: in the H200 profile
  // of causal D = 64 at S = 1k (bench/results/2026-12-04-v26-session14/)
  // 13% of the stall samples sat in this epilogue, most of them on those
  // registers (long scoreboard) behind the previous row's stores.
  // The reciprocal and the log are the one-MUFU approximations (1 ulp,
  // 2^-22 absolute in log2): rcp.rn and libdevice's log2f added a branch to
  // a slow path and a 12-term polynomial per row; the sum is never a
  // denormal (the row's largest weight is at least 2^-headroom), and an empty
  // row (sum 0) takes the select below.
  std::array<Value, 2> sum, empty, inv, valid, natural;
  for (int r = 0; r < 2; ++r) {
    sum[r] = fb.quadReduce(state.sum[r], /*isMax=*/false);
    valid[r] = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, rows[r], seqQ);
    empty[r] = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, sum[r], lb.f32(0.0));
    inv[r] = arith::SelectOp::create(b, empty[r], lb.f32(0.0),
                                     nvvmApprox(b, "llvm.nvvm.rcp.approx.ftz.f", sum[r]));
  }
  if (lse) {
    for (int r = 0; r < 2; ++r) {
      // Row-shifted ALiBi raised row r's scores (base 2) by
      // slope log2(e) (row' - base) = slope log2(e) (evalRows[r] -
      // evalRows[0]): zero on row 0. A row at -inf stays there.
      Value max = state.max[r];
      if (alibiShiftScale && r > 0) {
        Value rowOffset = lb.indexToF32(arith::SubIOp::create(b, evalRows[r], evalRows[0]));
        max = arith::SubFOp::create(b, max, arith::MulFOp::create(b, alibiSlopeLog2, rowOffset));
      }
      natural[r] = arith::SelectOp::create(
          b, empty[r], lb.negInf(),
          arith::MulFOp::create(
              b, arith::AddFOp::create(b, max, nvvmApprox(b, "llvm.nvvm.lg2.approx.ftz.f", sum[r])),
              lb.f32(kLn2)));
    }
  }
  auto storeRow = [&](int r) {
    for (int64_t n = 0; n < nTilesO; ++n) {
      Value x = arith::MulFOp::create(b, state.o[n * 4 + 2 * r], inv[r]);
      Value y = arith::MulFOp::create(b, state.o[n * 4 + 2 * r + 1], inv[r]);
      Value pair =
          vector::FromElementsOp::create(b, VectorType::get({2}, f32), ValueRange{x, y});
      if (outEt != f32)
        pair = arith::TruncFOp::create(b, VectorType::get({2}, outEt), pair);
      Value col = arith::AddIOp::create(b, lb.index(n * 8), t2);
      // Two adjacent columns from an even one: aligned to the pair (rows
      // start 16-byte aligned, as the launch requires). Without the
      // alignment LLVM split each pair into two 16-bit stores: 64 STG.U16
      // plus 32 shifts per thread per item, the H200 profile's epilogue
      // (lg throttle, long scoreboard) at S = 1k.
      int64_t pairBytes = 2 * ((outEt.getIntOrFloatBitWidth() + 7) / 8);
      vector::StoreOp::create(b, pair, out, ValueRange{batch, head, rows[r], col}, false,
                              llvm::MaybeAlign(pairBytes));
    }
  };
  if (staging) {
    storeStaged(state, inv, out, *staging);
  } else {
  // Both rows in one block where both are valid (all but a partial last q
  // tile), so that ptxas schedules the two rows' stores together instead of
  // sinking row 1's reciprocal below row 0's stores.
  lb.ifThen(
      arith::AndIOp::create(b, valid[0], valid[1]),
      [&] {
        storeRow(0);
        storeRow(1);
      },
      [&] {
        for (int r = 0; r < 2; ++r)
          lb.ifThen(valid[r], [&] { storeRow(r); });
      });
  }
  if (lse) {
    Value firstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t2, lb.index(0));
    for (int r = 0; r < 2; ++r)
      lb.ifThen(arith::AndIOp::create(b, valid[r], firstLane), [&] {
        memref::StoreOp::create(b, natural[r], lse, ValueRange{batch, head, rows[r]});
      });
  }
}

void FragmentSoftmax::storeStaged(const SoftmaxState &state, ArrayRef<Value> inv, Value out,
                                  const OutputStaging &staging) {
  ImplicitLocOpBuilder &b = kb.b;
  LoopBuilder &lb = kb.lb;
  PtxEmitter ptx(b);
  Type i32 = b.getI32Type();
  int64_t nTilesO = state.o.size() / 4, dv = nTilesO * 8;
  auto toI32 = [&](Value index) { return arith::IndexCastOp::create(b, i32, index); };
  // The lane from %laneid here, not from the thread index: LLVM hoisted the
  // lane's address arithmetic out of the item loop, and the registers it
  // kept live through the softmax spilled (causal 24 B, window 80 B at
  // D = 128 with 128-key tiles).
  Value lane = arith::IndexCastUIOp::create(
      b, b.getIndexType(), ptx.emit({i32}, {}, "mov.u32 $0, %laneid;", "=r"));
  Value t2 = arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, lb.index(4)), lb.index(2));
  // Writes: the pair (row g + 8 r, columns 8 n + t2, + 1) goes to box n / 8,
  // row g + 8 r, chunk (n % 8) ^ g, bytes 2 t2 .. 2 t2 + 3. For one n the
  // warp's 8 rows x 4 lanes hit 32 distinct banks.
  Value g = arith::DivUIOp::create(b, lane, lb.index(4));
  Value g16 = toI32(arith::MulIOp::create(b, g, lb.index(16)));
  Value laneBase = arith::AddIOp::create(
      b, staging.base,
      toI32(arith::AddIOp::create(b, arith::MulIOp::create(b, g, lb.index(128)),
                                  arith::MulIOp::create(b, t2, lb.index(2)))));
  for (int r = 0; r < 2; ++r)
    for (int64_t n = 0; n < nTilesO; ++n) {
      Value x = arith::MulFOp::create(b, state.o[n * 4 + 2 * r], inv[r]);
      Value y = arith::MulFOp::create(b, state.o[n * 4 + 2 * r + 1], inv[r]);
      Value chunk = arith::XOrIOp::create(b, g16, ptx.i32(n % 8 * 16));
      Value address = arith::AddIOp::create(
          b, arith::AddIOp::create(b, laneBase, ptx.i32(r * 8 * 128 + n / 8 * staging.boxBytes)),
          chunk);
      ptx.emit({}, {address, fb.packF32(x, y, /*asI32=*/true)}, "st.shared.b32 [$0], $1;", "r,r");
    }
  // The warp's own rows: a warp barrier orders its lanes' writes and reads.
  ptx.warpSync();
  // Reads: lane l takes 16-byte chunk l % chunks of row l / chunks of each
  // group of 32 / chunks rows (chunks = dv / 8 a row); 8 lanes read one
  // row's 128 bytes of a box, whose chunks the swizzle spreads over all
  // banks.
  int64_t chunks = dv / 8, rowsPerStep = 32 / chunks;
  Value chunk = arith::RemUIOp::create(b, lane, lb.index(chunks));
  Value rowInStep = arith::DivUIOp::create(b, lane, lb.index(chunks));
  Value chunkInBox = toI32(arith::RemUIOp::create(b, chunk, lb.index(8)));
  Value boxOffset = toI32(arith::MulIOp::create(b, arith::DivUIOp::create(b, chunk, lb.index(8)),
                                                lb.index(staging.boxBytes)));
  // The warp's first row (this lane's first row is g rows below it).
  Value warpRow = arith::SubIOp::create(b, rows[0], g);
  Value col = arith::MulIOp::create(b, chunk, lb.index(8));
  // Rows from the warp's first to the sequence end (negative past it), so
  // that the per-step bound is one 32-bit compare.
  Value rowsLeft = toI32(arith::SubIOp::create(b, seqQ, warpRow));
  VectorType v8 = VectorType::get({8}, fb.elem);
  // Each step's 16 bytes (as 4 x i32), its row and its bound; stored as they
  // are read, or all after all reads (readsFirst).
  auto storeStep = [&](Value packed, Value rowLocal) {
    Value row = arith::AddIOp::create(b, warpRow, rowLocal);
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, toI32(rowLocal), rowsLeft), [&] {
      // 16 bytes from a 16-byte aligned column of a 16-byte aligned row (as
      // the launch requires).
      vector::StoreOp::create(b, vector::BitCastOp::create(b, v8, packed), out,
                              ValueRange{batch, head, row, col}, false, llvm::MaybeAlign(16));
    });
  };
  SmallVector<std::pair<Value, Value>> readSteps;
  for (int64_t step = 0; step < 16 / rowsPerStep; ++step) {
    Value rowLocal = arith::AddIOp::create(b, rowInStep, lb.index(step * rowsPerStep));
    Value swizzled = arith::XOrIOp::create(
        b, chunkInBox, toI32(arith::RemUIOp::create(b, rowLocal, lb.index(8))));
    Value address = arith::AddIOp::create(
        b,
        arith::AddIOp::create(b, staging.base,
                              arith::AddIOp::create(b, boxOffset,
                                                    toI32(arith::MulIOp::create(
                                                        b, rowLocal, lb.index(128))))),
        arith::MulIOp::create(b, swizzled, ptx.i32(16)));
    Value words = ptx.emit({i32, i32, i32, i32}, {address},
                           "ld.shared.v4.b32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,r");
    SmallVector<Value> parts;
    for (int64_t i = 0; i < 4; ++i)
      parts.push_back(LLVM::ExtractValueOp::create(b, words, i));
    Value packed = vector::FromElementsOp::create(b, VectorType::get({4}, i32), parts);
    if (staging.readsFirst)
      readSteps.push_back({packed, rowLocal});
    else
      storeStep(packed, rowLocal);
  }
  if (!staging.readsFirst) {
    // Every lane's reads are done before the caller hands the bytes on.
    ptx.warpSync();
    return;
  }
  // (afterReads, which hands the bytes on, brings its own fence and barrier.)
  if (staging.afterReads)
    staging.afterReads();
  for (auto [packed, rowLocal] : readSteps)
    storeStep(packed, rowLocal);
}

} // namespace attn
