//===- Passes.td - attn passes -----------------------------*- tablegen -*-===//
#ifndef ATTN_TRANSFORMS_PASSES_TD
#define ATTN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnNormalizeMasks : Pass<"attn-normalize-masks"> {
  let summary = "Canonicalizes masks: one band per op, custom regions to attributes";
  let description = [{
    * `causal` plus `window<left = L, right = R>` becomes the single band
      `window<left = L, right = 0>` (causal clamps the right bound to 0).
    * A `mask_mod` region that is a conjunction of bottom-right aligned
      diagonal bounds (`k <= q + Sk - Sq + R`, `k >= q + Sk - Sq - L`) becomes
      `causal` or a `window` attribute, so the tile analysis sees it; the
      region (and captures nobody reads any more) is removed.
  }];
  let dependentDialects = ["::attn::AttnDialect"];
}

def AttnPlanTiles : Pass<"attn-plan-tiles"> {
  let summary = "Chooses tile sizes and classifies (q-tile, k-tile) pairs symbolically";
  let description = [{
    Attaches `#attn.tile_plan` to every `attn.attention`: the tile sizes and,
    as affine maps of the q-tile index with symbols (Sq, Sk), the range of k
    tiles that may hold visible pairs and the sub-range that is full. Masks
    that are data (block layout, document ids) are listed for run-time
    classification. Tile sizes come from the pass options, else from the
    function's `attn.options` (spec `options.block_q` / `block_k`).
  }];
  let options = [
    Option<"blockQ", "block-q", "int64_t", /*default=*/"0",
           "Rows of a query tile (0: from attn.options, else 64)">,
    Option<"blockK", "block-k", "int64_t", /*default=*/"0",
           "Keys of a key tile (0: from attn.options, else 64)">,
  ];
  let dependentDialects = ["::attn::AttnDialect", "::mlir::affine::AffineDialect"];
}

def AttnTileSoftmax : Pass<"attn-tile-softmax"> {
  let summary = "Tiles softmax attention and fuses the online softmax";
  let description = [{
    Rewrites every planned `attn.attention` into a parallel loop over
    (batch, query head, query tile) and, per query tile, loops over only the
    non-empty key tiles: partial tiles before and after the full ones apply
    element masks, full tiles do not. Scores carry log2(e) folded into the
    scale; the running state is updated by `attn.online_softmax` and written
    by `attn.softmax_finalize`. Query head h reads key/value head
    h / (Hq / Hkv).
  }];
  let dependentDialects = ["::attn::AttnDialect", "::mlir::affine::AffineDialect",
                           "::mlir::scf::SCFDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def AttnTileLinear : Pass<"attn-tile-linear"> {
  let summary = "Chunkwise form of linear and gated linear attention";
  let description = [{
    Rewrites `attn.linear_attention` and `attn.gated_linear_attention` into
    a parallel loop over (batch, head) carrying the f32 state through a loop
    over chunks: per chunk, the intra-chunk causal products with decay
    `exp2(log2(e) * (G_t - G_s))` (G the in-chunk cumulative log gates, so
    every exponent is <= 0 for decaying gates), the inter-chunk contribution
    `q_t exp(G_t) S`, and the state update.
  }];
  let options = [
    Option<"chunk", "chunk", "int64_t", /*default=*/"0",
           "Chunk length (0: from attn.options, else 64)">,
  ];
  let dependentDialects = ["::attn::AttnDialect", "::mlir::affine::AffineDialect",
                           "::mlir::scf::SCFDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def AttnLowerTileOps : Pass<"attn-lower-tile-ops"> {
  let summary = "Expands attn.online_softmax and attn.softmax_finalize into loops";
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def AttnLowerToGpuKernels : Pass<"attn-lower-to-gpu-kernels", "::mlir::ModuleOp"> {
  let summary = "Turns each function holding one attn op into a GPU kernel";
  let description = [{
    The portable SIMT kernels (one thread per query row, K/V tiles staged in
    shared memory, the online softmax in registers; one thread per value
    column for the linear kinds, in recurrent form). Each function holding
    an attn op becomes a `gpu.func` kernel of the same name and arguments in
    the `gpu.module @attn_kernels`; the host function is removed. Softmax ops
    must carry a `tile_plan` (attn-plan-tiles): block_q threads per block, k
    tiles of block_k keys, only the non-empty k tiles visited and element
    masks only on the partial ones.

    With `tensor-cores`, softmax ops in f16/bf16 whose plan has 64-row q tiles
    and 32-key k tiles get the mma.sync (m16n8k16) kernel instead: 4 warps of
    16 rows, Q fragments in registers, S and P in registers, O += P V on
    tensor cores (MmaSoftmaxKernel.cpp). Other ops keep the SIMT kernel.

    With `wgmma` (sm_90a only), softmax ops in f16/bf16 with head dims 64 or
    128 whose plan has 128-row q tiles and 128-key k tiles get the Hopper
    kernel (WgmmaSoftmaxKernel.cpp): two consumer warpgroups of 64 rows, Q, K
    and V brought in by TMA (128-byte swizzle) on mbarrier pipelines, S = Q K^T
    and O += P V as wgmma with P from registers. The kernel takes one extra
    `!llvm.ptr` argument per TMA tensor map (q, k, v), after the spec's
    arguments, recorded in `attn.tensor_maps`; its dynamic shared memory is in
    `attn.dynamic_shared_memory`.

    With `chunked-linear`, linear and gated linear attention in f16/bf16 with
    head dims 64 or 128 get the chunkwise tensor-core
    kernel (ChunkwiseLinearKernel.cpp): grid (Dv / 64, H, B), 4 warps, chunks
    of 64 steps, the f32 state slice in registers, the intra-chunk, inter-chunk
    and state products on mma.sync. Its grid's x extent is in `attn.grid_x`,
    its dynamic shared memory in `attn.dynamic_shared_memory`. Other linear
    ops keep the recurrent kernel.

    With `chunked-linear-wgmma` (sm_90a only; attn-compile's default), plain linear
    attention (identity feature map, no normalizer) and gated linear
    attention with scalar or head-constant gates in f16/bf16 with head dims
    64 or 128 get the Hopper chunkwise kernel (WgmmaChunkwiseLinearKernel.cpp):
    a producer warp (TMA of Q, K, V; the gate scan) and one consumer
    warpgroup whose products are wgmma. Like the softmax wgmma kernel it
    takes one `!llvm.ptr` per tensor map (q, k, v) after the spec's
    arguments (`attn.tensor_maps`). Other linear ops are unaffected.
  }];
  let options = [
    Option<"tensorCores", "tensor-cores", "bool", /*default=*/"false",
           "Use the mma.sync tensor-core kernel where it applies">,
    Option<"cpAsync", "cp-async", "bool", /*default=*/"false",
           "In the mma.sync kernel, double-buffer K/V and fetch them with "
           "cp.async one tile ahead (attn-compile's default)">,
    Option<"chunkedLinear", "chunked-linear", "bool", /*default=*/"false",
           "Linear kinds: the chunkwise tensor-core kernel (mma.sync, chunks of 64, "
           "f32 state per 64 value columns) where it applies (f16/bf16, head dims "
           "64/128) (attn-compile's default)">,
    Option<"chunkedLinearPrefetch", "chunked-linear-prefetch", "bool", /*default=*/"false",
           "In the chunkwise linear kernel, double-buffer Q/K/V and fetch the next "
           "chunk's with cp.async while this one is computed">,
    Option<"chunkedLinearWgmma", "chunked-linear-wgmma", "bool", /*default=*/"false",
           "Linear kinds (sm_90a only): the wgmma + TMA chunkwise kernel for no, scalar "
           "and head-constant gates, identity feature map, no normalizer (f16/bf16, "
           "head dims 64/128); others as without it (attn-compile's default)">,
    Option<"chunkedLinearWgmmaOverlap", "chunked-linear-wgmma-overlap", "bool",
           /*default=*/"false",
           "In the wgmma chunkwise linear kernel, issue the next chunk's Q K^T before "
           "this chunk's output and state are written out (experimental)">,
    Option<"chunkedLinearWgmmaVector", "chunked-linear-wgmma-vector", "bool",
           /*default=*/"false",
           "With chunked-linear-wgmma: the wgmma chunkwise kernel also for vector "
           "gates (GLA; experimental)">,
    Option<"chunkedLinearProducerDiagonal", "chunked-linear-producer-diagonal", "bool",
           /*default=*/"false",
           "With chunked-linear-wgmma-vector, at Dk = 128: the producer warpgroup "
           "computes the 8 x 8 diagonal triangles of A (f32) a chunk ahead of the "
           "consumer">,
    Option<"chunkedLinearTwoConsumers", "chunked-linear-two-consumers", "bool",
           /*default=*/"false",
           "With chunked-linear-wgmma-vector, at Dk = Dv = 128 (and not with "
           "chunked-linear-producer-diagonal): one block per (batch, head) with two "
           "consumer warpgroups, one per 64-column value half, sharing the "
           "intra-chunk A (computed once instead of once per half)">,
    Option<"chunkedLinearSplitState", "chunked-linear-split-state", "bool",
           /*default=*/"false",
           "With chunked-linear-wgmma, for no, scalar and head-constant gates: one "
           "block per (batch, head) whose state recurrence runs on its own warpgroup "
           "and whose chunk outputs run on two more, alternate chunks in parallel "
           "(experimental)">,
    Option<"chunkedLinearProducerKScale", "chunked-linear-producer-k-scale", "bool",
           /*default=*/"false",
           "With chunked-linear-split-state and gates: the producer warpgroup's idle "
           "warps scale K for the state update a chunk ahead (a K~ double buffer), "
           "off the state warpgroup's chain (experimental)">,
    Option<"fastTanh", "fast-tanh", "bool", /*default=*/"false",
           "math.tanh on f32 in the kernels as one MUFU.TANH (tanh.approx.f32, "
           "relative error at most 2^-10.99) instead of libdevice's tanhf (two "
           "MUFU ops and a polynomial) (attn-compile's default)">,
    Option<"wgmma", "wgmma", "bool", /*default=*/"false",
           "Use the sm_90a wgmma + TMA kernel where it applies">,
    Option<"pingPong", "ping-pong", "bool", /*default=*/"false",
           "In the wgmma kernel, let the consumer warpgroups take turns issuing "
           "their products (attn-compile's default)">,
    Option<"persistent", "persistent", "bool", /*default=*/"false",
           "In the wgmma kernel, one block per SM loops over the work items "
           "(q tile, head, batch), longest first">,
    Option<"lazyRescale", "lazy-rescale", "bool", /*default=*/"false",
           "In the wgmma kernel, rescale O only when a row's max grows past a "
           "headroom of 2^8 (FlashAttention-4; attn-compile's default)">,
    Option<"polyExp2Eighths", "poly-exp2", "int64_t", /*default=*/"0",
           "In the wgmma kernel, take the softmax weights of this many elements "
           "in 8 with a polynomial on the FMA pipe instead of MUFU.EX2 (0-8)">,
    Option<"kvStages", "kv-stages", "int64_t", /*default=*/"2",
           "In the wgmma kernel, the number of K/V pipeline stages (2-4; fewer "
           "where they would not fit the shared memory)">,
    Option<"itemOverlap", "item-overlap", "bool", /*default=*/"false",
           "In the persistent wgmma kernel, issue an item's last P V with the next "
           "item's first S = Q K^T and write its output before that tile's softmax "
           "(experimental: measured slower)">,
    Option<"dynamicScheduler", "dynamic-scheduler", "bool", /*default=*/"false",
           "In the persistent wgmma kernel, take each next work item from a global "
           "counter (an extra memref<1xi32> kernel argument, zero at launch) "
           "instead of the static blockIdx.x + k * gridDim.x; ignored without "
           "persistent">,
    Option<"documentTiles", "document-tiles", "bool", /*default=*/"false",
           "In the wgmma kernel, classify k tiles from the document ids at run "
           "time (attn-compile's default)">,
    Option<"documentIdsInShared", "document-ids-in-shared", "bool", /*default=*/"false",
           "With document-tiles, stage each live k tile's key document ids in "
           "shared memory with its K (the producer warp writes them), so the "
           "masked softmax reads them there instead of from global memory "
           "(attn-compile's default)">,
    Option<"documentTileSummary", "document-tile-summary", "bool", /*default=*/"false",
           "With document-tiles in a persistent kernel, summarize every k tile's "
           "key document ids as [min, max] in shared memory at block start and, "
           "from it, each q tile's first k tile whose range meets the q tile's "
           "(when batch x tiles fit), where each item's walk starts "
           "(attn-compile's default)">,
    Option<"documentTileSummaryEntries", "document-tile-summary-entries", "int64_t",
           /*default=*/"2048",
           "The document tile summary's capacity in entries (batch x k tiles, and "
           "batch x q tiles for the walk starts); a launch with more walks from "
           "the first tile">,
    Option<"documentTileSummaryUnroll", "document-tile-summary-unroll", "int64_t",
           /*default=*/"2",
           "Summary entries each consumer warp computes per round of loads">,
    Option<"stagedOutputStore", "staged-output-store", "bool", /*default=*/"false",
           "In the wgmma kernel, stage each warp's rows of O in shared memory (its "
           "rows of the item's Q buffer) and store whole rows, 16 bytes a lane "
           "(attn-compile's default)">,
    Option<"earlyOutputRelease", "early-output-release", "bool", /*default=*/"false",
           "With staged-output-store, each warp reads all its staged rows of O back, "
           "hands the item's Q buffer to the producer (persistent blocks), then issues "
           "its global stores (experimental)">,
    Option<"documentItemOrder", "document-item-order", "bool", /*default=*/"false",
           "With document-tiles in a persistent kernel, rank each batch's q tiles by "
           "their estimated live k tiles at block start and run the items in two "
           "phases (every pair's longer half of q tiles first), longest first "
           "inside each (attn-compile's default)">,
    Option<"documentItemOrderEntries", "document-item-order-entries", "int64_t",
           /*default=*/"2048",
           "The document item order's capacity in entries (batch x q tiles and "
           "batch x k tiles); a launch with more keeps the q-tile-descending order">,
    Option<"documentItemOrderPhases", "document-item-order-phases", "int64_t",
           /*default=*/"2",
           "The document item order's phases: 2 (every pair's longer half of q tiles "
           "first, each phase in the L2 groups' order) or 1 (longest first inside "
           "each L2 group)">,
    Option<"uniformWarpgroupIndex", "uniform-warpgroup-index", "bool", /*default=*/"false",
           "In the wgmma kernel, broadcast each consumer warpgroup's index from lane "
           "0 (shfl.sync), so that ptxas computes what derives from it, the wgmma "
           "descriptors of Q among it, in uniform registers (attn-compile's default)">,
    Option<"crossHeadTiles", "cross-head-tiles", "bool", /*default=*/"false",
           "In the persistent wgmma kernel, run the query rows of every (batch, head) "
           "as one sequence of 64-row slices, one per consumer warpgroup, so that no "
           "tile is partly past a sequence end but the launch's last (where the k "
           "tiles a q tile visits do not depend on it and none are classified at run "
           "time; ignored otherwise)">,
    Option<"halfDiagonalKeys", "half-diagonal-keys", "bool", /*default=*/"false",
           "In the wgmma kernel under a causal or window bound with 128-key tiles: "
           "on an item's last k tile, a consumer warpgroup whose rows see none of "
           "the tile's second 64 keys computes S = Q K^T with N = 64 and P V with "
           "half the k steps (ignored with tile lists, cross-head tiles and item "
           "overlap)">,
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::vector::VectorDialect",
                           "::mlir::NVVM::NVVMDialect", "::mlir::LLVM::LLVMDialect",
                           "::mlir::nvgpu::NVGPUDialect",
                           "::mlir::affine::AffineDialect", "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect"];
}

#endif // ATTN_TRANSFORMS_PASSES_TD
