//===- GpuKernelCommon.h - helpers shared by the GPU kernel builders ------===//
#ifndef ATTN_LIB_TRANSFORMS_GPUKERNELCOMMON_H
#define ATTN_LIB_TRANSFORMS_GPUKERNELCOMMON_H

#include "LinearProblem.h"
#include "LoopBuilder.h"
#include "attn/IR/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

#include <functional>

namespace attn {
using namespace mlir;

/// Lanes per register chunk: the largest power of two <= 32 dividing `n`.
inline int64_t chunkWidth(int64_t n) {
  int64_t w = 32;
  while (n % w != 0)
    w /= 2;
  return w;
}

class KernelBuilder {
public:
  KernelBuilder(ImplicitLocOpBuilder &b) : b(b), lb(b) {}

  /// scf.for carrying `init`; `body(iv, state)` returns the next state.
  SmallVector<Value> forWithState(
      Value from, Value to, Value step, ValueRange init,
      const std::function<SmallVector<Value>(Value, ValueRange)> &body) {
    auto loop = scf::ForOp::create(b, from, to, step, init);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    SmallVector<Value> next = body(loop.getInductionVar(), loop.getRegionIterArgs());
    scf::YieldOp::create(b, next);
    return SmallVector<Value>(loop.getResults());
  }

  /// scf.while carrying `init`: `before(state)` returns whether to run the
  /// body and the values it passes on (state plus any extras); `body(passed)`
  /// returns the next state. Returns the values passed at exit.
  SmallVector<Value> whileWithState(
      ValueRange init, TypeRange passedTypes,
      const std::function<std::pair<Value, SmallVector<Value>>(ValueRange)> &before,
      const std::function<SmallVector<Value>(ValueRange)> &body) {
    auto loop = scf::WhileOp::create(b, passedTypes, init);
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Location> initLocs(init.size(), b.getLoc());
    Block *beforeBlock =
        b.createBlock(&loop.getBefore(), {}, TypeRange(init.getTypes()), initLocs);
    auto [cond, passed] = before(beforeBlock->getArguments());
    scf::ConditionOp::create(b, cond, passed);
    SmallVector<Location> passedLocs(passedTypes.size(), b.getLoc());
    Block *afterBlock = b.createBlock(&loop.getAfter(), {}, passedTypes, passedLocs);
    scf::YieldOp::create(b, body(afterBlock->getArguments()));
    return SmallVector<Value>(loop.getResults());
  }

  /// scf.if with results: `thenBody` and `elseBody` return values of `types`.
  SmallVector<Value> ifWithResults(Value cond, TypeRange types,
                                   const std::function<SmallVector<Value>()> &thenBody,
                                   const std::function<SmallVector<Value>()> &elseBody) {
    auto ifOp = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&ifOp.getThenRegion().front());
      scf::YieldOp::create(b, thenBody());
      b.setInsertionPointToStart(&ifOp.getElseRegion().front());
      scf::YieldOp::create(b, elseBody());
    }
    return SmallVector<Value>(ifOp.getResults());
  }

  /// Loads `width` contiguous elements at `indices` (last index varies) as f32.
  Value loadVectorF32(Value memref, ValueRange indices, int64_t width) {
    Type et = cast<MemRefType>(memref.getType()).getElementType();
    Value v = vector::LoadOp::create(b, VectorType::get({width}, et), memref, indices);
    if (et.isF32())
      return v;
    return arith::ExtFOp::create(b, VectorType::get({width}, b.getF32Type()), v);
  }

  Value splat(Value scalar, int64_t width) {
    return vector::BroadcastOp::create(b, VectorType::get({width}, scalar.getType()),
                                       scalar);
  }

  Value reduceAdd(Value v) {
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, v);
  }

  /// Cooperative copy of rows [first, first + rows) of `src`'s [b, h, :, :]
  /// slice into `dst` [rows, width], zero beyond `limit` rows.
  void stageTile(Value src, Value batch, Value head, Value first, Value limit,
                 Value dst, int64_t rows, int64_t width, Value tid, int64_t threads) {
    Type et = cast<MemRefType>(dst.getType()).getElementType();
    Value total = lb.index(rows * width), stride = lb.index(threads);
    auto loop = scf::ForOp::create(b, tid, total, stride);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value e = loop.getInductionVar();
    Value r = arith::DivUIOp::create(b, e, lb.index(width));
    Value d = arith::RemUIOp::create(b, e, lb.index(width));
    Value pos = arith::AddIOp::create(b, first, r);
    Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, limit);
    Value zero = arith::ConstantOp::create(b, et, b.getZeroAttr(et));
    Value v = ifWithResults(
        inside, {et},
        [&] {
          return SmallVector<Value>{
              memref::LoadOp::create(b, src, ValueRange{batch, head, pos, d})};
        },
        [&] { return SmallVector<Value>{zero}; })[0];
    memref::StoreOp::create(b, v, dst, ValueRange{r, d});
  }

  /// The 16-byte chunks of a [rows, width] tile, spread over `threads`
  /// threads: `body(r, c, pos, inside)` for chunk (row r, first column c),
  /// source row pos = first + r, inside = pos < limit.
  void forEachChunk(Value first, Value limit, int64_t rows, int64_t width, int64_t lanes,
                    Value tid, int64_t threads,
                    const std::function<void(Value, Value, Value, Value)> &body) {
    int64_t perRow = width / lanes;
    auto loop = scf::ForOp::create(b, tid, lb.index(rows * perRow), lb.index(threads));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value e = loop.getInductionVar();
    Value r = arith::DivUIOp::create(b, e, lb.index(perRow));
    Value c = arith::MulIOp::create(b, arith::RemUIOp::create(b, e, lb.index(perRow)),
                                    lb.index(lanes));
    Value pos = arith::AddIOp::create(b, first, r);
    Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, limit);
    body(r, c, pos, inside);
  }

  /// stageTile with 16-byte accesses: `width` must be a multiple of the
  /// vector length, and rows of `src` 16-byte aligned (head dims % 8 == 0).
  void stageTileVectorized(Value src, Value batch, Value head, Value first, Value limit,
                           Value dst, int64_t rows, int64_t width, Value tid,
                           int64_t threads) {
    Type et = cast<MemRefType>(dst.getType()).getElementType();
    int64_t lanes = 16 / (et.getIntOrFloatBitWidth() / 8);
    if (width % lanes != 0)
      return stageTile(src, batch, head, first, limit, dst, rows, width, tid, threads);
    VectorType vt = VectorType::get({lanes}, et);
    forEachChunk(first, limit, rows, width, lanes, tid, threads,
                 [&](Value r, Value c, Value pos, Value inside) {
                   Value zero = arith::ConstantOp::create(
                       b, vt, DenseElementsAttr::get(vt, b.getZeroAttr(et)));
                   Value v = ifWithResults(
                       inside, {vt},
                       [&] {
                         return SmallVector<Value>{
                             vector::LoadOp::create(b, vt, src, ValueRange{batch, head, pos, c},
                                                    false, llvm::MaybeAlign(16))};
                       },
                       [&] { return SmallVector<Value>{zero}; })[0];
                   vector::StoreOp::create(b, v, dst, ValueRange{r, c}, false,
                                           llvm::MaybeAlign(16));
                 });
  }

  /// stageTileVectorized with cp.async (16-byte cp.async.cg, asynchronous):
  /// rows of `src` from `first` go to rows `dstRow`.. of `dst`; rows at or
  /// past `limit` are zero-filled (a source size of 0, from a clamped, valid
  /// address). The caller commits the group and waits for it.
  void stageTileAsync(Value src, Value batch, Value head, Value first, Value limit, Value dst,
                      Value dstRow, int64_t rows, int64_t width, Value tid, int64_t threads) {
    Type et = cast<MemRefType>(dst.getType()).getElementType();
    int64_t lanes = 16 / (et.getIntOrFloatBitWidth() / 8);
    forEachChunk(
        first, limit, rows, width, lanes, tid, threads,
        [&](Value r, Value c, Value pos, Value inside) {
          Value valid =
              arith::MinSIOp::create(b, pos, arith::SubIOp::create(b, limit, lb.index(1)));
          Value srcElements = arith::SelectOp::create(b, inside, lb.index(lanes), lb.index(0));
          nvgpu::DeviceAsyncCopyOp::create(
              b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), dst,
              ValueRange{arith::AddIOp::create(b, dstRow, r), c}, src,
              ValueRange{batch, head, valid, c}, b.getIndexAttr(lanes), srcElements,
              b.getUnitAttr());
        });
  }

  ImplicitLocOpBuilder &b;
  LoopBuilder lb;
};

/// Creates the kernel (same name and arguments as `host`) and maps the host
/// arguments to the kernel's.
/// Creates the kernel (same name and arguments as `host`), maps the host
/// arguments to the kernel's, and gives it one 16-byte aligned shared-memory
/// buffer per type in `shared` (module-level globals: workgroup attributions
/// are only 2-byte aligned, too little for 16-byte vector accesses).
inline gpu::GPUFuncOp createKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                   func::FuncOp host, ArrayRef<Type> shared,
                                   IRMapping &mapping, SmallVector<Value> &sharedValues) {
  OpBuilder::InsertionGuard guard(b);
  SmallVector<std::string> names;
  b.setInsertionPointToStart(module.getBody());
  for (auto [i, type] : llvm::enumerate(shared)) {
    names.push_back((host.getName() + "_smem" + std::to_string(i)).str());
    memref::GlobalOp::create(b, names.back(), b.getStringAttr("private"),
                             cast<MemRefType>(type), b.getUnitAttr(), /*constant=*/false,
                             b.getI64IntegerAttr(16));
  }
  b.setInsertionPointToEnd(module.getBody());
  auto kernel = gpu::GPUFuncOp::create(b, host.getName(), host.getFunctionType(),
                                       TypeRange(), TypeRange());
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  Block &entry = kernel.getBody().front();
  for (auto [hostArg, kernelArg] :
       llvm::zip(host.getArguments(), entry.getArguments().take_front(host.getNumArguments())))
    mapping.map(hostArg, kernelArg);
  b.setInsertionPointToStart(&entry);
  sharedValues.clear();
  for (auto [name, type] : llvm::zip(names, shared))
    sharedValues.push_back(memref::GetGlobalOp::create(b, type, name));
  return kernel;
}

/// The one dynamic shared-memory buffer of the module: public, uninitialized,
/// zero-sized, 1024-byte aligned (PTX `.extern .shared .align 1024`).
inline memref::GlobalOp getDynamicSharedMemory(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module) {
  constexpr StringLiteral name = "attn_dynamic_smem";
  if (auto existing = module.lookupSymbol<memref::GlobalOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  auto space = gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto type = MemRefType::get({0}, b.getI8Type(), MemRefLayoutAttrInterface(), space);
  return memref::GlobalOp::create(b, name, b.getStringAttr("public"), type, Attribute(),
                                  /*constant=*/false, b.getI64IntegerAttr(1024));
}

/// The position of `v` among `host`'s arguments, or -1. The TMA kernels
/// need Q, K and V to be arguments: each tensor map describes one.
inline int64_t hostArgumentIndex(func::FuncOp host, Value v) {
  auto arg = dyn_cast<BlockArgument>(v);
  return arg && arg.getOwner()->getParentOp() == host ? arg.getArgNumber() : -1;
}

/// Appends `count` `!llvm.ptr` arguments after the kernel's others (the runtime passes
/// the encoded tensor maps there, in `attn.tensor_maps` order) and returns them.
inline SmallVector<Value> appendTensorMapArguments(gpu::GPUFuncOp kernel, func::FuncOp host,
                                                   int64_t count) {
  Type ptrType = LLVM::LLVMPointerType::get(kernel.getContext());
  for (int64_t i = 0; i < count; ++i)
    (void)kernel.insertArgument(kernel.getNumArguments(), ptrType, DictionaryAttr(),
                                host.getLoc());
  SmallVector<Value> maps;
  int64_t first = kernel.getNumArguments() - count;
  for (int64_t i = 0; i < count; ++i)
    maps.push_back(kernel.getArgument(first + i));
  return maps;
}

/// One entry of `attn.tensor_maps` (read into the manifest by GpuCompiler):
/// the argument it describes, its box, and the 128-byte swizzle every wgmma
/// operand uses.
inline DictionaryAttr tensorMapAttr(Builder &b, int64_t argument, int64_t boxCols,
                                    int64_t boxRows) {
  return b.getDictionaryAttr({b.getNamedAttr("argument", b.getI64IntegerAttr(argument)),
                              b.getNamedAttr("box_cols", b.getI64IntegerAttr(boxCols)),
                              b.getNamedAttr("box_rows", b.getI64IntegerAttr(boxRows)),
                              b.getNamedAttr("swizzle", b.getI64IntegerAttr(128))});
}

/// A wgmma matrix descriptor for the shared-memory operand at the 32-bit
/// shared address `address` (PTX ISA, matrix descriptor): start address >> 4
/// in bits 0-13, leading byte offset >> 4 in 16-29, stride byte offset (1024:
/// 8-row groups of 128-byte rows) >> 4 in 32-45, 128-byte swizzle in 62-63.
inline Value wgmmaDescriptor(ImplicitLocOpBuilder &b, Value address, int64_t leadingBytes) {
  auto c64 = [&](int64_t v) { return arith::ConstantIntOp::create(b, v, 64); };
  Value addr = arith::ExtUIOp::create(b, b.getI64Type(), address);
  Value start = arith::AndIOp::create(b, arith::ShRUIOp::create(b, addr, c64(4)), c64(0x3FFF));
  int64_t bits = ((leadingBytes >> 4) << 16) | (int64_t(1024 >> 4) << 32) | (int64_t(1) << 62);
  return arith::OrIOp::create(b, start, c64(bits));
}

/// A kernel's dynamic shared memory (`global`, from getDynamicSharedMemory) as
/// one byte arena of `totalBytes`: 32-bit shared-window addresses for the
/// asynchronous instructions (TMA, mbarriers, wgmma descriptors) and typed
/// 1-D views at byte offsets for ordinary loads and stores.
class SharedArena {
public:
  SharedArena(ImplicitLocOpBuilder &b, memref::GlobalOp global, int64_t totalBytes)
      : b(b), space(gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup)) {
    Value smem = memref::GetGlobalOp::create(b, global.getType(), global.getSymName());
    base = arith::IndexCastOp::create(b, b.getI32Type(),
                                      memref::ExtractAlignedPointerAsIndexOp::create(b, smem));
    flat = memref::ReinterpretCastOp::create(
        b, MemRefType::get({totalBytes}, b.getI8Type(), MemRefLayoutAttrInterface(), space),
        smem, 0, ArrayRef<int64_t>{totalBytes}, ArrayRef<int64_t>{1});
  }
  /// The shared-window address of byte `offset` (i32).
  Value address(Value offset) { return arith::AddIOp::create(b, base, offset); }
  /// `elements` values of `type` from byte `byteOffset` (index).
  Value view(Value byteOffset, int64_t elements, Type type) {
    return memref::ViewOp::create(
        b, MemRefType::get({elements}, type, MemRefLayoutAttrInterface(), space), flat,
        byteOffset, ValueRange{});
  }

private:
  ImplicitLocOpBuilder &b;
  gpu::AddressSpaceAttr space;
  Value base, flat;
};

inline MemRefType sharedTile(MLIRContext *ctx, int64_t rows, int64_t cols, Type et) {
  auto space = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  return MemRefType::get({rows, cols}, et, MemRefLayoutAttrInterface(), space);
}


/// The tensor-core (mma.sync m16n8k16) softmax kernel; see MmaSoftmaxKernel.cpp.
/// Returns false (building nothing) when the op is outside what it supports.
/// With `cpAsync`, K and V tiles are double buffered and fetched with
/// cp.async one tile ahead.
bool buildMmaSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                           func::FuncOp host, AttentionOp op, bool cpAsync = false);

/// The Hopper kernel's optional techniques (attn-compile turns on all but
/// `persistent`).
struct WgmmaKernelOptions {
  /// Document masks classified per k tile at run time (empty tiles skipped,
  /// single-document tiles unmasked).
  bool documentTiles = false;
  /// The consumer warpgroups take turns issuing their products.
  bool pingPong = false;
  /// One block per SM loops over the work items (q tile, head, batch),
  /// longest first (marked `attn.persistent`).
  bool persistent = false;
  /// O is rescaled only when a row's max grew past a headroom
  /// (FragmentSoftmax::update's lazyRescale).
  bool lazyRescale = false;
  /// Weights of this many elements in 8 taken by polyExp2 on the FMA pipe
  /// (FragmentSoftmax::update's polyExp2Eighths).
  int64_t polyExp2Eighths = 0;
  /// K / V pipeline stages (2 to 4; fewer where they would not fit).
  int64_t kvStages = 2;
  /// Persistent blocks: an item's last P V is issued with the next item's
  /// first S = Q K^T and its output written before that tile's softmax.
  bool itemOverlap = false;
  /// Persistent blocks take their items from a global counter (a
  /// memref<1xi32> kernel argument after the host's, zero at launch; marked
  /// `attn.tile_counter`) instead of the static blockIdx.x + k * gridDim.x.
  bool dynamicScheduler = false;
  /// With documentTiles: the producer stages each live tile's key document
  /// ids in shared memory with its K, and the masked softmax reads them there.
  bool documentIdsInShared = false;
  /// With documentTiles in a persistent kernel: every block summarizes each
  /// k tile's key ids as [min, max] in shared memory first and, from it, each
  /// q tile's first k tile whose range meets the q tile's (when batch x tiles
  /// fit), where each item's walk starts.
  bool documentTileSummary = false;
  /// The summary's capacity in entries (batch x k tiles, batch x q tiles;
  /// fewer where shared memory is short).
  int64_t documentTileSummaryEntries = 2048;
  /// Summary entries each consumer warp computes per round of loads.
  int64_t documentTileSummaryUnroll = 2;
  /// Each consumer warp stages its rows of O in shared memory (its rows of
  /// the item's Q buffer) and stores whole rows (FragmentSoftmax's
  /// OutputStaging), where the output is 16-bit and fits there.
  bool stagedOutputStore = false;
  /// With documentTiles in a persistent kernel: every block ranks the q tiles
  /// of each batch by their estimated live k tiles at block start, and the
  /// items run in two phases (the longer half of every pair's q tiles first),
  /// longest first inside each, so the longest items do not start last.
  bool documentItemOrder = false;
  /// The item order's capacity in entries (batch x q tiles, batch x k tiles;
  /// fewer where shared memory is short); a launch with more keeps the
  /// q-tile-descending order.
  int64_t documentItemOrderEntries = 2048;
  /// The item order's phases: 2 (every pair's longer half of q tiles first)
  /// or 1 (longest first inside each L2 group only).
  int64_t documentItemOrderPhases = 2;
  /// Persistent blocks: the query rows of all (batch, head) pairs as one
  /// sequence of 64-row slices, an item the next slice per consumer
  /// warpgroup (two pairs at most; marked `attn.cross_head_tiles`), where the
  /// k tile range does not depend on the q tile.
  bool crossHeadTiles = false;
  /// Each consumer warpgroup's index broadcast from lane 0, so that ptxas
  /// treats it (and the wgmma descriptors computed from it) as warp-uniform.
  bool uniformWarpgroupIndex = false;
  /// Causal / window masks with 128-key tiles: on an item's last k tile, a
  /// consumer warpgroup whose rows see none of the tile's second 64 keys
  /// computes S with N = 64 and P V with half the k steps.
  bool halfDiagonalKeys = false;
  /// With stagedOutputStore: each warp reads all its staged rows of O back,
  /// hands the item's Q buffer back (persistent blocks) and only then issues
  /// its global stores (OutputStaging::readsFirst).
  bool earlyOutputRelease = false;
};

/// The Hopper (sm_90a) wgmma + TMA softmax kernel; see WgmmaSoftmaxKernel.cpp.
/// Returns false (building nothing) when the op is outside what it supports.
bool buildWgmmaSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                             func::FuncOp host, AttentionOp op,
                             const WgmmaKernelOptions &options);

/// The chunkwise linear / gated linear kernel on mma.sync tensor cores; see
/// ChunkwiseLinearKernel.cpp. Returns false (building nothing) when the
/// problem is outside what it supports (f32, head dims other than 64 / 128);
/// the recurrent SIMT kernel then takes it. With `prefetch`, Q, K and V are
/// double buffered and the next chunk's are fetched with cp.async while this
/// one is computed (marked `attn.prefetch`).
bool buildChunkwiseLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                func::FuncOp host, LinearProblem p, bool prefetch = false);

/// The sm_90a chunkwise linear kernel (wgmma + TMA + mbarrier, a producer
/// warp); see WgmmaChunkwiseLinearKernel.cpp. Returns false (building
/// nothing) outside its scope: f16/bf16, head dims 64 / 128, identity feature
/// map, no normalizer, no gates or scalar / head-constant gates. With
/// `overlap` (marked `attn.overlap`), the next chunk's A = Q K^T is issued
/// before this chunk's output and state are written out. With `vectorGates`,
/// vector gates (GLA) too (without overlap); with `producerDiagonal` as well,
/// the producer warpgroup computes their 8 x 8 diagonal triangles (1 block
/// per SM, Dk = 128 only). With `twoConsumers` (vector gates at Dk = Dv =
/// 128, without `producerDiagonal`), one block per (batch, head) with two
/// consumer warpgroups, one per 64-column value half, that share the
/// state-independent intra-chunk A.
struct WgmmaLinearOptions {
  bool overlap = false;
  bool vectorGates = false;
  bool producerDiagonal = false;
  bool twoConsumers = false;
};
bool buildWgmmaChunkwiseLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                     func::FuncOp host, LinearProblem p,
                                     WgmmaLinearOptions options = {});

/// The chunkwise linear kernel with the state recurrence on its own
/// warpgroup and the chunks' outputs on two more (WgmmaSplitStateLinearKernel
/// .cpp): no, scalar and head-constant gates, identity feature map, no
/// normalizer, f16/bf16, head dims 64/128. Returns false (building nothing)
/// outside that.
/// With `producerKScale` (experimental), the producer warpgroup's idle warps
/// scale K for the state update a chunk ahead (gates only).
bool buildWgmmaSplitStateLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                      func::FuncOp host, LinearProblem p,
                                      bool producerKScale = false);

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_GPUKERNELCOMMON_H
