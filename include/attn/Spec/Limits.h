//===- Limits.h - bounds shared by the spec reader, the dialect and passes -===//
//
// No dependencies, so that the spec reader (no MLIR), the attn dialect's
// verifiers and the tiling passes check the same numbers.
//
//===----------------------------------------------------------------------===//

#ifndef ATTN_SPEC_LIMITS_H
#define ATTN_SPEC_LIMITS_H

#include <cstdint>

namespace attn {

/// The largest query / key tile (options.block_q / block_k, attn-plan-tiles'
/// options, #attn.tile_plan's sizes).
constexpr int64_t kMaxSpecTile = 4096;
/// The largest chunk of the chunkwise linear form (options.chunk,
/// attn-tile-linear's option): its staging buffers live on the stack.
constexpr int64_t kMaxSpecChunk = 1024;

} // namespace attn

#endif // ATTN_SPEC_LIMITS_H
