//===- AttnDialect.cpp - attn dialect registration ------------------------===//
#include "attn/IR/AttnDialect.h"
#include "attn/IR/AttnOps.h"
#include "attn/Spec/Limits.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace attn;

#include "attn/IR/AttnDialect.cpp.inc"
#include "attn/IR/AttnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "attn/IR/AttnAttrs.cpp.inc"

LogicalResult TilePlanAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t blockQ, int64_t blockK, AffineMapAttr kvBegin,
                                   AffineMapAttr fullBegin, AffineMapAttr fullEnd,
                                   AffineMapAttr kvEnd, ArrayAttr dataMasks, bool) {
  for (auto [name, size] : {std::pair<const char *, int64_t>{"block_q", blockQ},
                            {"block_k", blockK}})
    if (size < 1 || size > kMaxSpecTile)
      return emitError() << "tile_plan " << name << " must be between 1 and " << kMaxSpecTile
                         << ", got " << size;
  for (auto [name, map] : {std::pair<const char *, AffineMapAttr>{"kv_begin", kvBegin},
                           {"full_begin", fullBegin},
                           {"full_end", fullEnd},
                           {"kv_end", kvEnd}}) {
    AffineMap m = map.getValue();
    if (m.getNumDims() != 1 || m.getNumSymbols() != 2 || m.getNumResults() < 1)
      return emitError() << "tile_plan " << name
                         << " must be a map (t)[Sq, Sk] with at least one result, got " << map;
  }
  for (Attribute mask : dataMasks) {
    auto name = dyn_cast<StringAttr>(mask);
    if (!name || (name.getValue() != "block_sparse" && name.getValue() != "documents"))
      return emitError() << "tile_plan data_masks holds \"block_sparse\" and \"documents\" "
                            "only, got "
                         << mask;
  }
  return success();
}

void AttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "attn/IR/AttnOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "attn/IR/AttnAttrs.cpp.inc"
      >();
}
