//===- WgmmaSoftmaxKernel.cpp - Hopper softmax attention (wgmma + TMA) ----===//
//
// The sm_90a kernel. A block of two consumer warpgroups owns 128 query rows
// (three own 192 at head dim 64), 64 per warpgroup. Q, K and V come into
// shared memory by TMA (128-byte swizzle, zero fill past the sequence ends)
// and complete on mbarriers; K and V tiles of 128 (or 64) keys are double
// buffered, and thread 0 refills a stage as soon as every consumer
// warpgroup is done with it. Per k tile:
//   S = Q K^T    wgmma m64n{BK}k16, both operands from shared memory
//   scores, masks (partial tiles only), online softmax on the accumulators
//   O += P V     wgmma m64n{Dv}k16 with P from registers (the accumulator
//                layout rounded to 16 bits is the A-register layout)
// The register layout of the accumulators is the mma.sync one per warp, so
// the softmax itself is FragmentSoftmax, shared with the mma.sync kernel.
//
// wgmma, TMA and mbarrier instructions are emitted as inline PTX: the NVVM
// dialect has no wgmma with A from registers, and one mechanism for all of
// them keeps the operand conventions in one place (PtxEmitter.h).
//
// Shared memory (one dynamic buffer, 1024-byte aligned, carved by offset):
//   Q[b]   [D/64 boxes][128 or 192 rows][64]   (128-byte rows, swizzled)
//                                              b = 0 (persistent: 0, 1)
//   K[s]   [D/64 boxes][BK keys][64]           s = 0, 1
//   V[s]   [Dv/64 boxes][BK keys][64]
//   mbarriers: q, k[0..1], v[0..1] full and empty; persistent: q empty
//   per buffer, buffer 1's q full; tile-list words and the document walk's
//   exchange after them
// wgmma descriptors (PTX ISA, matrix descriptor): start address >> 4 in bits
// 0-13, leading byte offset >> 4 in 16-29, stride byte offset >> 4 in 32-45,
// 128-byte swizzle (1) in bits 62-63. Q and K are K-major: 8-row groups are
// 1024 bytes apart (stride), and a k16 step inside the 64-wide swizzle row
// advances the start address by 32 bytes. V is the B operand in MN-major
// form (transposed): its 8-key groups are 1024 bytes apart (stride), its
// 64-column boxes BK * 128 bytes apart (leading).
//
//===----------------------------------------------------------------------===//

#include "FragmentSoftmax.h"
#include "PtxEmitter.h"
#include "TileRange.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

#include <map>
#include <string>

namespace attn {

namespace {

constexpr int64_t kRowsPerWarpgroup = 64;
// The most dynamic shared memory an sm_90 block may have (227 KB).
constexpr int64_t kMaxSharedBytes = 232448;
// The document tile summary: not below this many [min, max] entries where
// shared memory is short (a smaller capacity asked for explicitly is kept).
constexpr int64_t kMinSummaryTiles = 256;
// The document item order's smallest useful capacity (entries).
constexpr int64_t kMinOrderEntries = 64;
// setmaxnreg budgets (multiples of 8, producer + consumers <= 65536):
//   two consumer warpgroups (128 query rows): 128 * 24 + 256 * 240 = 64512
//   (the FlashAttention-3 split for one producer, two consumers);
//   three (192 rows, head dim 64 only): 128 * 24 + 384 * 160 = 64512.
// The persistent producer also walks the work items (64-bit index math):
// 128 * 40 + 256 * 232 = 64512; with three consumer groups 128 * 40 + 384 *
// 152 = 63488 for 64-key tiles, and for 128-key tiles 128 * 32 + 384 * 160
// = 65536, the whole pool at 512 threads (the entry cap is 128): at 40 / 152
// those consumers spilled and attn-compile fell back to 64-key tiles; at
// 32 / 160 dense D = 64 compiles spill-free (the causal walk then spills
// 12-20 B in the producer, and falls back to 64-key tiles as before).
// Staged document ids (two consumer groups only): the producer warp's id
// copy needs 56 (8 B spilled at 40 / 232); 128 * 56 + 256 * 224 = 64512.
struct RegisterSplit {
  int64_t producer, consumer;
};
constexpr RegisterSplit registerSplit(int64_t consumerGroups, bool persistent, int64_t blockK,
                                      bool stagedDocIds) {
  if (stagedDocIds)
    return RegisterSplit{56, 224};
  if (consumerGroups == 2)
    return persistent ? RegisterSplit{40, 232} : RegisterSplit{24, 240};
  if (!persistent)
    return RegisterSplit{24, 160};
  return blockK == 128 ? RegisterSplit{32, 160} : RegisterSplit{40, 152};
}
// setmaxnreg moves registers inside the block's pool, which the launch sized
// at 65536 / threads rounded down to 8 a thread: per warpgroup lane, this.
// A split above it leaves the consumers' setmaxnreg.inc waiting forever
// (session 17: 48 / 232 with two consumer groups, 512 > 504, hung every
// document kernel). Checked for every split at compile time.
constexpr int64_t setmaxnregPool(int64_t warpgroups) {
  return 65536 / (128 * warpgroups) / 8 * 8 * warpgroups;
}
constexpr bool everyRegisterSplitFits() {
  for (int64_t groups = 1; groups <= 3; ++groups)
    for (bool persistent : {false, true})
      for (int64_t blockK : {64, 128})
        for (bool staged : {false, groups == 2}) { // staged ids: two groups only
          RegisterSplit r = registerSplit(groups, persistent, blockK, staged);
          if (r.producer % 8 || r.consumer % 8 || r.producer < 24 || r.consumer > 256 ||
              r.producer + groups * r.consumer > setmaxnregPool(groups + 1))
            return false;
        }
  return true;
}
static_assert(everyRegisterSplitFits(),
              "a producer / consumer register split exceeds the block's pool (or setmaxnreg's "
              "range: multiples of 8 in [24, 256])");
constexpr int64_t kBoxCols = 64; // 128 bytes of 16-bit elements: one swizzle row
// K + V bytes of the (batch, head) pairs a persistent grid works on at once:
// about a third of the H100 / H200 L2 (50 MB), leaving room for Q, O and the
// other half of the L2's partitioned copy.
constexpr int64_t kL2GroupBytes = 16 << 20;


} // namespace

bool buildWgmmaSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                             func::FuncOp host, AttentionOp op,
                             const WgmmaKernelOptions &options) {
  bool documentTiles = options.documentTiles, pingPong = options.pingPong,
       persistent = options.persistent;
  // A persistent block's consumers carry an item's last P V into the next
  // item (see the consumer loop): only where there is a next item. Not with
  // run-time document tiles, whose persistent consumers it pushed into
  // spills (24 bytes under 232 registers).
  bool itemOverlap = persistent && options.itemOverlap &&
                     !(options.documentTiles && op.getQDocIds());
  // The dynamic tile scheduler (persistent blocks only): the producer takes
  // each next item from a global counter (a kernel argument after the
  // host's, zero at launch) instead of the static blockIdx.x + k * gridDim.x.
  bool dynamic = persistent && options.dynamicScheduler;
  auto qType = cast<MemRefType>(op.getQuery().getType());
  auto kType = cast<MemRefType>(op.getKey().getType());
  auto vType = cast<MemRefType>(op.getValue().getType());
  Type et = qType.getElementType();
  int64_t d = qType.getDimSize(3), dv = vType.getDimSize(3);
  TilePlanAttr plan = op.getTilePlanAttr();
  int64_t qArg = hostArgumentIndex(host, op.getQuery()), kArg = hostArgumentIndex(host, op.getKey());
  int64_t vArg = hostArgumentIndex(host, op.getValue());
  if (!(et.isBF16() || et.isF16()) || kType.getElementType() != et ||
      vType.getElementType() != et || (d != 64 && d != 128) || (dv != 64 && dv != 128) ||
      (plan.getBlockK() != 64 && plan.getBlockK() != 128) || qArg < 0 || kArg < 0 || vArg < 0)
    return false;
  // O through shared memory (`stagedOutputStore`): each consumer warp
  // writes its 16 rows of O into its own rows of the item's Q buffer, which
  // no S = Q K^T reads after the item's last tile, and stores whole rows
  // from there. A warp store of O straight from the accumulator fragments
  // covers 16 bytes of 8 rows: 8 cache lines (L1 tag lookups) for 128 bytes,
  // 1024 per warpgroup and item at D = 128, the largest once-per-item cost in
  // the H200 profile of dense D = 128 at S = 1k (session 18). Staged, a warp
  // store covers two whole rows (4 lines for 512 bytes). Needs O in the
  // inputs' 16-bit type and no wider than Q; not with item overlap, which
  // writes an item out after its Q buffer went back to the producer.
  bool stageOutput =
      options.stagedOutputStore && !itemOverlap &&
      cast<MemRefType>(op.getOut().getType()).getElementType() == et && dv <= d;
  // Two consumer warpgroups (128 query rows), or three (192 rows; FA3's
  // head-dim-64 shape): at D = 64 the softmax is twice as heavy per FLOP, so
  // a third warpgroup's softmax keeps the tensor cores fed. Its 160 registers
  // per consumer thread hold S, O and P only at D = Dv = 64.
  int64_t blockQ = plan.getBlockQ();
  if (blockQ != 128 && !(blockQ == 192 && d == 64 && dv == 64))
    return false;
  int64_t consumerGroups = blockQ / kRowsPerWarpgroup, consumerWarps = consumerGroups * 4;
  // 128-key tiles halve the barriers and waits per key; 64-key tiles halve
  // the S registers, for variants whose per-element score code would spill.
  int64_t blockK = plan.getBlockK();
  // Block-sparse layouts whose blocks are whole tiles are classified per tile
  // at run time: a tile of an empty block is neither loaded nor computed, and
  // a tile of a kept block needs no per-element block-mask test.
  bool skipEmptyTiles = op.getBlockMask() && op.getBlockSparseAttr().getBlockQ() % blockQ == 0 &&
                        op.getBlockSparseAttr().getBlockK() % blockK == 0;
  // Document masks, classified per tile at run time (`documentTiles`,
  // attn-compile's default): a k tile none of whose document ids lies in the
  // q tile's [min, max] is empty (skipped like an empty block-sparse block);
  // a single document on both sides makes the document test all-true (the
  // unmasked path, where the plan calls the tile full).
  bool classifyDocuments = documentTiles && op.getQDocIds();
  // With either, the producer warp classifies the k tiles and hands the
  // consumers a tile list: it loads only the live tiles and writes each one's
  // word next to its stage, the item's last live tile marked. The consumers
  // follow the words and never walk a dead tile.
  bool tileList = classifyDocuments || skipEmptyTiles;
  // Staged key ids (`documentIdsInShared`): the producer warp writes each
  // live tile's key document ids into shared memory next to its K, so the
  // masked softmax reads a lane's 32 ids as 16 LDS.64 at immediate offsets
  // (issuable in any order) instead of 32 LDG, each with its own address
  // (their L1 latency was exposed three columns at a time in session 15's
  // SASS). The ring has two slots per stage: tile n's slot is rewritten for
  // tile n + 2 * stages, which the producer issues only after every consumer
  // warp released K of tile n + stages, i.e. after its softmax of tile n.
  // (Two consumer warpgroups: one named barrier id per consumer warp, see
  // below; 64- or 128-key tiles: one st.shared.v2 / .v4 per producer lane.)
  bool stagedDocIds = classifyDocuments && options.documentIdsInShared && consumerGroups == 2 &&
                      (blockK == 64 || blockK == 128);
  // The ring's handovers: each producer lane arrives on K's full barrier
  // after its own id stores (count 32); the consumer lanes' reads reach
  // lane 0's empty arrival through a named barrier of the warp's 32 threads
  // (ids 4-7 and 9-12 for consumer warps 0-7; 1-3 are ping-pong's, 8 the
  // walk's). bar.warp.sync orders them too (PTX), but compute-sanitizer's
  // racecheck does not model it and reported the rewrites of changed ids as
  // races (session 16, c2); a producer-side named barrier (c3) left a
  // report on the walk's item slot.
  // Cross-head tiles (`crossHeadTiles`, persistent blocks): the query rows of
  // every (batch, head) pair, cut into 64-row slices (one per consumer
  // warpgroup), run as one sequence, and an item is the next consumerGroups
  // slices, whichever pairs they belong to. With 192-row tiles a pair of
  // S = 1k rows is 5 1/3 tiles: its last tile computed 128 rows of zeros on
  // two of its three warpgroups (11% of the work at 1k, 3% at 4k). An item
  // spans at most two pairs (each pair has at least consumerGroups - 1
  // slices, empty ones past the sequence end if it is that short), so each
  // K / V stage has two slots: the first slice's pair's tile and, where the
  // last slice belongs to another (batch, KV head), that pair's; each
  // warpgroup reads its slice's slot. Only where the k tiles a q tile visits
  // do not depend on the q tile (no causal or window bound) and nothing is
  // classified per tile at run time.
  auto planUsesTile = [&](AffineMapAttr map) { return map.getValue().isFunctionOfDim(0); };
  bool crossHead = options.crossHeadTiles && persistent && !itemOverlap && !tileList &&
                   !op.getBlockMask() && !op.getQDocIds() && !planUsesTile(plan.getKvBegin()) &&
                   !planUsesTile(plan.getKvEnd()) && !planUsesTile(plan.getFullBegin()) &&
                   !planUsesTile(plan.getFullEnd());
  int64_t kvSlots = crossHead ? 2 : 1;
  // Half diagonal keys (`halfDiagonalKeys`): under a causal or window bound
  // an item's last k tile is the diagonal one, where a 128-row item's first
  // warpgroup (rows 0 .. 63) sees at most the tile's first 64 keys. That
  // warpgroup then computes S = Q K^T with N = 64, the softmax of 64 columns
  // and P V with half the k steps: a quarter of the diagonal tile's products
  // and exponentials (~5% of all at S = 1k). Only on the item's last tile,
  // so the P V inside the loop is always whole and only the one after it
  // may be half; not with a tile list (whose last tile is known late).
  bool halfDiagonal = options.halfDiagonalKeys && blockK == 128 && !tileList && !crossHead &&
                      !itemOverlap && (op.getCausal() || op.getWindowAttr());
  // A tile-list word: kt << 2 | documents full << 1 | last tile of the item.
  constexpr int64_t kLastBit = 0, kFullBit = 1, kWordShift = 2;
  // The producer warps' named barrier (ping-pong takes 1 .. 3).
  constexpr int64_t kWalkBarrier = 8;
  // The block-start tables' release (the document tile summary, the item
  // order): the consumers arrive once they are written, the producer warps
  // wait (the whole block).
  constexpr int64_t kSummaryBarrier = 13;
  // The consumer warps' barrier between the summary and the walk starts.
  constexpr int64_t kConsumersBarrier = 14;
  // A consumer thread's pending item, parked in shared memory (item
  // overlap): work index, max[2], sum[2].
  constexpr int64_t kPendingBytes = 20;
  // The document walk keeps 16 id loads per lane in flight: more registers
  // for the producer, as the persistent one.
  RegisterSplit registers =
      registerSplit(consumerGroups, persistent || classifyDocuments, blockK, stagedDocIds);

  // Byte offsets in the dynamic shared memory.
  int64_t qBoxBytes = blockQ * 128, kvBoxBytes = blockK * 128;
  int64_t qBytes = qBoxBytes * (d / kBoxCols);
  int64_t kStageBytes = kvBoxBytes * (d / kBoxCols), vStageBytes = kvBoxBytes * (dv / kBoxCols);
  // A persistent block double-buffers Q: item n's Q goes to buffer n % 2
  // as soon as the producer reaches the item (two tiles ahead of the
  // consumers), instead of after the consumers' last S = Q K^T of item n - 1,
  // which left the load's latency in every item's first tile (192 KB at
  // D = 128, under the 227 KB an H100 / H200 block may have).
  int64_t qBuffers = persistent ? 2 : 1;
  // The document walk spreads over the producer's four warps: each
  // classifies its share of a round's tiles and posts its (live, full) bits
  // in shared memory (two rounds' worth, by round parity) for warp 0.
  int64_t walkWarps = classifyDocuments ? 4 : 1;
  // Byte offsets for `n` K / V stages.
  struct Layout {
    int64_t kOffset, vOffset, barOffset, qEmptyOffset, slotOffset, wordOffset, exchangeOffset,
        pendingOffset, idsOffset, sharedBytes;
  };
  auto layoutFor = [&](int64_t n) {
    Layout l;
    l.kOffset = qBuffers * qBytes;
    l.vOffset = l.kOffset + n * kvSlots * kStageBytes;
    l.barOffset = l.vOffset + n * kvSlots * vStageBytes;
    // mbarriers: q full, per stage k/v full and empty; persistent: q empty
    // per buffer, then buffer 1's q full.
    l.qEmptyOffset = l.barOffset + 8 * (1 + 4 * n);
    // Tile-list words, one i32 per stage; then the document walk's exchange.
    // Dynamic scheduler: each Q buffer's item index (one i32 per buffer).
    l.slotOffset = l.qEmptyOffset + (persistent ? 24 : 0);
    l.wordOffset = l.slotOffset + (dynamic ? 4 * qBuffers : 0);
    l.exchangeOffset = l.wordOffset + (tileList ? 4 * n : 0);
    l.pendingOffset = l.exchangeOffset + (walkWarps > 1 ? 2 * walkWarps * 8 : 0);
    // Item overlap: each consumer thread's pending item (see the consumer).
    int64_t pendingEnd = l.pendingOffset + (itemOverlap ? consumerGroups * 128 * kPendingBytes : 0);
    // Staged key ids: 2 n slots of blockK i32, 16-byte aligned (STS.128).
    l.idsOffset = (pendingEnd + 15) / 16 * 16;
    l.sharedBytes = stagedDocIds ? l.idsOffset + 2 * n * blockK * 4 : pendingEnd;
    return l;
  };
  // K / V stages (options.kvStages, 2 by default): as many as asked and fit
  // the block's shared memory (3 fit at D = 128 on the one-item grid, 4 at
  // D = 64).
  int64_t stages = options.kvStages;
  while (stages > 2 && layoutFor(stages).sharedBytes > kMaxSharedBytes)
    --stages;
  // Cross-head tiles' second slot fits at D = 64 (180 KB with two Q buffers),
  // not at D = 128 (320 KB), whose 128-row tiles it helps only at lengths
  // that are no multiple of 128.
  if (crossHead && layoutFor(stages).sharedBytes > kMaxSharedBytes) {
    crossHead = false;
    kvSlots = 1;
  }
  auto [kOffset, vOffset, barOffset, qEmptyOffset, slotOffset, wordOffset, exchangeOffset,
        pendingOffset, idsOffset, sharedBytes] = layoutFor(stages);
  // Document walk starts (`documentTileSummary`, persistent blocks): at
  // block start the consumer warps write each k tile's [min, max] key id
  // (batch-major, 8 bytes an entry), then from it each (batch, q tile)'s
  // first k tile whose range meets the q tile's [min, max] (4 bytes an
  // entry), if both fit; each item's walk then begins at its q tile's
  // entry. The walk otherwise classified every dead tile before a late
  // document's first live one, a round of global id loads per 8 tiles
  // (S = 16k: up to 13 rounds per item; session 17's c1, the walk started at
  // the documents' known starts: +3% at 4k, +6.7% at 16k). A range that meets
  // the q tile's can still hold no matching id (unsorted ids): the walk,
  // which still classifies every tile from there, skips it. The block reads
  // all batch x (Sq + Sk) ids once (256 KB at 32k tokens, from L2), where
  // the walk read a q tile's preceding ones per item. (The scan in the
  // producer, per item, cost the consumers a register: 4 B spilled at
  // 56 / 224, and the producer spilled at 40 / 232.)
  int64_t summaryOffset = (sharedBytes + 7) / 8 * 8;
  // (2048 entries of each by default: 24 KB, batch x tiles of 128 keys up to
  // 256k tokens.)
  int64_t summaryCapacity =
      classifyDocuments && persistent && options.documentTileSummary
          ? std::min<int64_t>(options.documentTileSummaryEntries,
                              (kMaxSharedBytes - summaryOffset) / 12)
          : 0;
  bool tileSummary =
      summaryCapacity > 0 &&
      summaryCapacity >= std::min(kMinSummaryTiles, options.documentTileSummaryEntries);
  // Entries (k tiles, then q tiles) each consumer warp takes per round of
  // loads at block start: 2 by default (what session 17 measured; 4 compiles
  // spill-free too; 8 spilled).
  int64_t summaryUnroll = std::max<int64_t>(1, options.documentTileSummaryUnroll);
  int64_t startsOffset = summaryOffset + 8 * summaryCapacity;
  if (tileSummary)
    sharedBytes = startsOffset + 4 * summaryCapacity;
  // Document item order (`documentItemOrder`, persistent blocks). Document
  // items differ in length by the data (a q tile visits its document's k
  // tiles up to the diagonal), so the q-tile-descending order can leave the
  // longest items to the end of the schedule: with the bench's 16k documents
  // (8330 / 3386 / 1595 / 3073 tokens) the last group's 66-tile items start
  // half way through it, and a list-scheduling model of the dynamic counter
  // put the makespan 7.7% (4k: 4.7%) over the ideal. At block start the
  // consumer warps estimate each (batch, q tile)'s live k tiles from the
  // first and last key id of every tile (exact for sorted ids; for any ids
  // only the order depends on it) and rank each batch's q tiles, longest
  // first; the items then run in two phases, every pair's longer half of q
  // tiles first, each phase in the L2 groups' order (model: 0.7% / 0.8%
  // over the ideal; the long phase has twice a group's pairs in flight).
  // H200, same-round A/Bs (session 19): 16k +3.5-5.9%, 4k none (each pair's
  // K / V is read in both phases), hence attn-compile's plan gives it to the
  // Sk >= 16384 kernel. A header (the phase-one ranks per pair, whether the
  // order fits this launch, the q tiles and the pairs per group: 16 bytes,
  // read at each item so that nothing of it is live through the consumers'
  // loop, where its registers spilled the masked softmax at 128-key tiles)
  // and the ranks (4 bytes an entry) follow the summary; the block-start
  // scratch (each k tile's first and last id, 8 bytes; each q tile's
  // estimate, 4 bytes) lies over the K / V stages, which no TMA load writes
  // before the order is released to the producer.
  int64_t orderOffset = (sharedBytes + 15) / 16 * 16;
  int64_t orderCapacity =
      classifyDocuments && persistent && options.documentItemOrder
          ? std::min({options.documentItemOrderEntries, (kMaxSharedBytes - orderOffset - 16) / 4,
                      stages * (kStageBytes + vStageBytes) / 12})
          : 0;
  bool itemOrder = orderCapacity >= std::min(kMinOrderEntries, options.documentItemOrderEntries);
  int64_t orderScratchK = kOffset, orderScratchLength = kOffset + 8 * orderCapacity;
  int64_t orderTableOffset = orderOffset + 16;
  if (itemOrder)
    sharedBytes = orderTableOffset + 4 * orderCapacity;

  memref::GlobalOp smemGlobal = getDynamicSharedMemory(b, module);
  IRMapping map;
  SmallVector<Value> unusedShared;
  gpu::GPUFuncOp kernel = createKernel(b, module, host, {}, map, unusedShared);
  // Dynamic scheduler: the tile counter (memref<1xi32>, role tile_counter)
  // after the host's arguments, before the tensor maps (the runtime packs
  // every tensor's descriptor first, then the maps).
  if (dynamic) {
    (void)kernel.insertArgument(host.getNumArguments(), MemRefType::get({1}, b.getI32Type()),
                                DictionaryAttr(), host.getLoc());
    kernel->setAttr("attn.tile_counter", b.getUnitAttr());
  }
  SmallVector<Value> maps = appendTensorMapArguments(kernel, host, 3);
  Value qMap = maps[0], kMap = maps[1], vMap = maps[2];
  int64_t threads = (consumerGroups + 1) * 128; // producer + consumers
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(threads));
  kernel->setAttr("attn.tensor_cores", b.getStringAttr("wgmma"));
  kernel->setAttr("attn.dynamic_shared_memory", b.getI64IntegerAttr(sharedBytes));
  if (persistent)
    kernel->setAttr("attn.persistent", b.getUnitAttr());
  if (crossHead)
    kernel->setAttr("attn.cross_head_tiles", b.getUnitAttr());
  if (halfDiagonal)
    kernel->setAttr("attn.half_diagonal_keys", b.getUnitAttr());
  // A register cap at entry (.maxntid with .minnctapersm 1: 65536 / 384 ->
  // 168 per thread) is what lets setmaxnreg move registers between roles.
  kernel->setAttr(NVVM::NVVMDialect::getMaxntidAttrName(),
                  b.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
  kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(1));
  kernel->setAttr("attn.tensor_maps",
                  b.getArrayAttr({tensorMapAttr(b, qArg, kBoxCols,
                                                crossHead ? kRowsPerWarpgroup : blockQ),
                                  tensorMapAttr(b, kArg, kBoxCols, blockK),
                                  tensorMapAttr(b, vArg, kBoxCols, blockK)}));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  FragmentBuilder fb(b, et);
  PtxEmitter ptx(b);
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  auto toI32 = [&](Value index) { return arith::IndexCastOp::create(b, i32, index); };
  auto c32 = [&](int64_t v) { return ptx.i32(v); };

  Value q = map.lookup(op.getQuery()), k = map.lookup(op.getKey());
  Value out = map.lookup(op.getOut());
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warp = arith::DivUIOp::create(b, tid, lb.index(32));
  Value lane = arith::RemUIOp::create(b, tid, lb.index(32));
  Value wg = arith::DivUIOp::create(b, tid, lb.index(128));
  Value g = arith::DivUIOp::create(b, lane, lb.index(4));
  Value t2 = arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, lb.index(4)), lb.index(2));
  Value seqQ = lb.dim(q, 2), seqK = lb.dim(k, 2);
  Value heads = lb.dim(q, 1);
  Value group = arith::DivUIOp::create(b, heads, lb.dim(k, 1));
  // Shared addresses (32-bit, shared window).
  Value smem = memref::GetGlobalOp::create(b, smemGlobal.getType(), smemGlobal.getSymName());
  Value smemBase = toI32(memref::ExtractAlignedPointerAsIndexOp::create(b, smem));
  auto at = [&](Value offset) { return arith::AddIOp::create(b, smemBase, offset); };
  // mbarriers: q full, then per stage k full, v full, k empty, v empty.
  // Item n's Q buffer (n % qBuffers) and that buffer's fill number.
  auto qBufferOf = [&](Value itemCount) {
    return std::make_pair(arith::RemUIOp::create(b, itemCount, c32(qBuffers)).getResult(),
                          arith::DivUIOp::create(b, itemCount, c32(qBuffers)).getResult());
  };
  auto qFullBar = [&](Value buffer) {
    return at(arith::AddIOp::create(
        b, c32(barOffset), arith::MulIOp::create(b, buffer, c32(qEmptyOffset + 16 - barOffset))));
  };
  auto qEmptyBar = [&](Value buffer) {
    return at(arith::AddIOp::create(b, c32(qEmptyOffset), arith::MulIOp::create(b, buffer, c32(8))));
  };
  // Dynamic scheduler: Q buffer `buffer`'s item index, written by the
  // producer's issuing thread before its q-full arrival (which releases it)
  // and read by the consumers after their q-full wait.
  auto slotAddress = [&](Value buffer) {
    return at(arith::AddIOp::create(b, c32(slotOffset), arith::MulIOp::create(b, buffer, c32(4))));
  };
  // The next item index: atom.global.add.u32 on the tile counter.
  auto takeItem = [&]() -> Value {
    Value counter = kernel.getArgument(host.getNumArguments());
    Value address = arith::IndexCastOp::create(
        b, i64, memref::ExtractAlignedPointerAsIndexOp::create(b, counter));
    return ptx.emit({i32}, {address},
                    "{ .reg .u64 attn_ctr; cvta.to.global.u64 attn_ctr, $1; "
                    "atom.global.add.u32 $0, [attn_ctr], 1; }",
                    "=r,l");
  };
  enum BarrierKind { KFull = 0, VFull = 1, KEmpty = 2, VEmpty = 3 };
  auto stageBar = [&](BarrierKind kind, Value stage) {
    return at(arith::AddIOp::create(b, c32(barOffset + 8 + 8 * stages * kind),
                                    arith::MulIOp::create(b, stage, c32(8))));
  };
  auto descriptor = [&](Value offset, int64_t leadingBytes) {
    return wgmmaDescriptor(b, at(offset), leadingBytes);
  };
  // The i-th visited tile (a counter: block-sparse tiles may be skipped)
  // goes to stage i % 2, that stage's fill number i / 2.
  auto stageOf = [&](Value i) {
    Value stage = arith::RemUIOp::create(b, i, c32(stages));
    Value round = arith::DivUIOp::create(b, i, c32(stages)); // the stage's fill number
    return std::make_pair(stage, round);
  };
  // The i-th visited tile's staged key ids (stagedDocIds): slot i % (2 stages).
  auto idSlot = [&](Value i) {
    return at(arith::AddIOp::create(
        b, c32(idsOffset),
        arith::MulIOp::create(b, arith::RemUIOp::create(b, i, c32(2 * stages)), c32(blockK * 4))));
  };

  // A work item: one q tile of one (batch, head). Longest first: with causal
  // and window masks the last q tiles visit the most k tiles, so they start
  // first and the short ones fill in the tail. Without `persistent` a block
  // is one item (grid = q tiles x heads x batch); with it, the grid is one
  // block per SM and block x takes items x, x + gridDim.x, ... of
  // (q tile descending) x batch x head, carrying its pipeline state over.
  struct Item {
    Value tile, head, batch, kvHead, rowBegin, coordBatch, coordHead, coordKvHead;
    Value work; // persistent: the item's index (i32), from which itemOf rebuilds it
    // Cross-head tiles: the slice's first row (i32); its K / V slot (i32, 0
    // or 1); whether the item's last slice reads another (batch, KV head)
    // than its first, and that pair's coordinates (slot 1's).
    Value sliceRow, kvSlot, mixed, secondBatch, secondKvHead;
  };
  Value qTiles = arith::CeilDivUIOp::create(b, seqQ, lb.index(blockQ));
  Value pairs32 =
      crossHead ? toI32(arith::MulIOp::create(b, heads, lb.dim(q, 0))).getResult() : Value();
  // Cross-head tiles: each pair's 64-row slices, at least consumerGroups - 1
  // (so that an item's slices span two pairs at most).
  Value slicesPerPair =
      crossHead ? (Value)arith::MaxUIOp::create(
                      b, toI32(arith::CeilDivUIOp::create(b, seqQ, lb.index(kRowsPerWarpgroup))),
                      c32(consumerGroups - 1))
                : Value();
  // The number of items (dynamic scheduler: the end of the counter's range).
  Value itemTotal32 =
      crossHead ? arith::CeilDivUIOp::create(b, arith::MulIOp::create(b, pairs32, slicesPerPair),
                                             c32(consumerGroups))
                      .getResult()
      : dynamic ? toI32(arith::MulIOp::create(b, qTiles, arith::MulIOp::create(b, heads, lb.dim(q, 0))))
                      .getResult()
                : Value();
  auto makeItem = [&](Value tile, Value head, Value batch) {
    Item it{tile, head, batch, arith::DivUIOp::create(b, head, group),
            arith::MulIOp::create(b, tile, lb.index(blockQ))};
    it.coordBatch = toI32(batch);
    it.coordHead = toI32(head);
    it.coordKvHead = toI32(it.kvHead);
    return it;
  };
  // Cross-head tiles: warpgroup `g32`'s slice of item `w32` (both i32). The
  // slices run pair-major (pairs head-fastest, as the items otherwise), a
  // pair's rows inside; a slice past the last pair's (the last item's tail)
  // is an empty one of the last pair, past its sequence end (its Q loads
  // are zero-filled and it writes no rows). rowBegin is the slice's first
  // row less the warpgroup's 64 g rows, so that the consumers' row of the
  // tile (16 w + lane / 4, warpgroup included) lands in the slice.
  Value kvHeads32, headCount32, group32;
  if (crossHead) {
    kvHeads32 = toI32(lb.dim(k, 1));
    headCount32 = toI32(heads);
    group32 = toI32(group);
  }
  auto sliceOf = [&](Value slice) {
    Value total = arith::MulIOp::create(b, pairs32, slicesPerPair);
    Value past = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, slice, total);
    Value pair = arith::SelectOp::create(b, past, arith::SubIOp::create(b, pairs32, c32(1)),
                                         arith::DivUIOp::create(b, slice, slicesPerPair));
    Value row = arith::SelectOp::create(
        b, past, arith::MulIOp::create(b, slicesPerPair, c32(kRowsPerWarpgroup)),
        arith::MulIOp::create(b, arith::RemUIOp::create(b, slice, slicesPerPair),
                              c32(kRowsPerWarpgroup)));
    return std::make_pair(pair, row);
  };
  // A pair's (batch, KV head) as one number: slices of query heads that
  // share a KV head (GQA) read one slot.
  auto kvPairOf = [&](Value pair) {
    return arith::AddIOp::create(
        b, arith::MulIOp::create(b, arith::DivUIOp::create(b, pair, headCount32), kvHeads32),
        arith::DivUIOp::create(b, arith::RemUIOp::create(b, pair, headCount32), group32));
  };
  auto sliceItem = [&](Value w32, Value g32) {
    auto indexOf = [&](Value v) {
      return arith::IndexCastUIOp::create(b, b.getIndexType(), v).getResult();
    };
    Value first = arith::MulIOp::create(b, w32, c32(consumerGroups));
    auto [pair, row] = sliceOf(arith::AddIOp::create(b, first, g32));
    Value firstKv = kvPairOf(sliceOf(first).first);
    Value lastPair = sliceOf(arith::AddIOp::create(b, first, c32(consumerGroups - 1))).first;
    Item item = makeItem(lb.index(0), indexOf(arith::RemUIOp::create(b, pair, headCount32)),
                         indexOf(arith::DivUIOp::create(b, pair, headCount32)));
    item.rowBegin = arith::SubIOp::create(
        b, indexOf(row), arith::MulIOp::create(b, indexOf(g32), lb.index(kRowsPerWarpgroup)));
    item.work = w32;
    item.sliceRow = row;
    item.kvSlot = arith::ExtUIOp::create(
        b, i32, arith::CmpIOp::create(b, arith::CmpIPredicate::ne, kvPairOf(pair), firstKv));
    item.mixed =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ne, kvPairOf(lastPair), firstKv);
    item.secondBatch = arith::DivUIOp::create(b, lastPair, headCount32);
    item.secondKvHead =
        arith::DivUIOp::create(b, arith::RemUIOp::create(b, lastPair, headCount32), group32);
    return item;
  };
  // The warpgroup whose slice itemOf gives (cross-head tiles): 0 for the
  // producer, whose item loads every slice's Q from it; each consumer
  // warpgroup its own.
  Value itemGroup32 = crossHead ? c32(0) : Value();
  // Persistent order, L2-aware: the (batch, head) pairs are cut into groups
  // whose K and V fit in kL2GroupBytes together, and a group's items run
  // before the next group's (longest first inside it). Walking the q tiles
  // outermost over all pairs instead (the first version) puts ~132 pairs'
  // K / V in flight at once (264 MB at S = 4k, far past the 50 MB L2), so
  // every q tile re-read its K / V from HBM: dense 4k ran 15% slower than the
  // one-item grid. Pairs are head-fastest, so query heads sharing a KV head
  // (GQA) are neighbours and share their K / V in L2.
  // In 32-bit arithmetic: the group sizes are loop-invariant, and in index
  // (64-bit) registers they pushed the persistent consumers (232 registers)
  // into spills. Whatever perGroup comes out (even from a wrapped product at
  // absurd sizes), clamped to [1, pairs] the map stays a bijection onto the
  // items; only the L2 locality depends on it.
  // The launch's k tiles (index). (Not arith.ceildivui: LLVM merged it with
  // the consumers' own k-tile count, hoisted to the kernel's entry, live
  // through their loop.)
  auto kTileCount = [&]() -> Value {
    return arith::DivUIOp::create(
        b, arith::AddIOp::create(b, seqK, lb.index(blockK - 1)), lb.index(blockK));
  };
  // Whether this launch's entries (batch x q tiles, batch x k tiles) fit the
  // document item order (see itemOrder).
  auto orderFits = [&]() -> Value {
    Value batches = toI32(lb.dim(q, 0));
    Value kTiles = toI32(kTileCount());
    auto within = [&](Value tiles) {
      return arith::CmpIOp::create(b, arith::CmpIPredicate::ule,
                                   arith::MulIOp::create(b, batches, tiles), c32(orderCapacity));
    };
    return arith::AndIOp::create(b, within(toI32(qTiles)), within(kTiles));
  };
  // The item order's rank table: entry batch * q tiles + rank holds the q
  // tile of that rank (longest first).
  auto orderAt = [&](Value entry) {
    return at(
        arith::AddIOp::create(b, c32(orderTableOffset), arith::MulIOp::create(b, entry, c32(4))));
  };
  // The (batch, head) pairs of an L2 group (see itemOf), of `pairs` in all.
  auto pairsPerGroup = [&](Value pairs) -> Value {
    Value pairBytes = toI32(arith::MulIOp::create(b, seqK, lb.index((d + dv) * 2)));
    Value perGroup = arith::MaxUIOp::create(
        b, c32(1),
        arith::DivUIOp::create(b, arith::MulIOp::create(b, c32(kL2GroupBytes), toI32(group)),
                               pairBytes));
    return arith::MinUIOp::create(b, perGroup, pairs);
  };
  auto itemOf = [&](Value w) {
    // Cross-head tiles in slice order: the items in flight at once share one
    // or a few pairs' K / V (at S = 16k, 132 items of 85 a pair). Spreading
    // them over an L2 group's pairs instead ((p % lanes) * perLane + p /
    // lanes) ran 1.5-2% slower at 1k / 4k / 16k (H200, session 20's c6).
    if (crossHead)
      return sliceItem(w.getType().isInteger(32) ? w : toI32(w).getResult(), itemGroup32);
    auto i32Of = [&](Value index) { return toI32(index).getResult(); };
    auto indexOf = [&](Value v) {
      return arith::IndexCastUIOp::create(b, b.getIndexType(), v).getResult();
    };
    Value tiles = itemOrder ? Value() : i32Of(qTiles), heads32 = i32Of(heads);
    Value pairs = arith::MulIOp::create(b, heads32, i32Of(lb.dim(q, 0)));
    Value perGroup, header;
    if (itemOrder) {
      // With the item order, the header holds the q tiles and group size
      // too: read at each item, not live through the consumers' loop.
      header = ptx.emit({i32, i32, i32, i32}, {at(c32(orderOffset))},
                        "ld.shared.v4.u32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,r");
      tiles = LLVM::ExtractValueOp::create(b, header, 2);
      perGroup = LLVM::ExtractValueOp::create(b, header, 3);
    } else {
      perGroup = pairsPerGroup(pairs);
    }
    Value w32 = w.getType().isInteger(32) ? w : i32Of(w);
    // A phase's ranks [rankBase, rankBase + ranks) of every pair; without
    // the item order, one phase of every rank (rank r: q tile tiles - 1 - r).
    Value rankBase = c32(0), ranks = tiles, phaseW = w32, fits;
    if (itemOrder) {
      // Phase one: every pair's ceil(tiles / 2) longest q tiles; phase two
      // the rest (where the order does not fit, every rank: one phase, as
      // without it).
      Value longRanks = LLVM::ExtractValueOp::create(b, header, 0);
      fits = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                   LLVM::ExtractValueOp::create(b, header, 1), c32(0));
      Value phaseOne = arith::MulIOp::create(b, longRanks, pairs);
      Value second = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, w32, phaseOne);
      phaseW = arith::SelectOp::create(b, second, arith::SubIOp::create(b, w32, phaseOne), w32);
      ranks = arith::SelectOp::create(b, second, arith::SubIOp::create(b, tiles, longRanks),
                                      longRanks);
      rankBase = arith::SelectOp::create(b, second, longRanks, c32(0));
    }
    Value groupItems = arith::MulIOp::create(b, perGroup, ranks);
    Value firstPair =
        arith::MulIOp::create(b, arith::DivUIOp::create(b, phaseW, groupItems), perGroup);
    // The last group may hold fewer pairs.
    Value groupPairs =
        arith::MinUIOp::create(b, perGroup, arith::SubIOp::create(b, pairs, firstPair));
    Value rest = arith::RemUIOp::create(b, phaseW, groupItems);
    Value rank = arith::AddIOp::create(b, rankBase, arith::DivUIOp::create(b, rest, groupPairs));
    Value tile = arith::SubIOp::create(b, arith::SubIOp::create(b, tiles, c32(1)), rank);
    Value pair = arith::AddIOp::create(b, firstPair, arith::RemUIOp::create(b, rest, groupPairs));
    if (itemOrder) {
      // The rank's q tile in the pair's batch (the entry clamped into the
      // table where the order does not fit and the load is unused).
      Value entry = arith::AddIOp::create(
          b, arith::MulIOp::create(b, arith::DivUIOp::create(b, pair, heads32), tiles), rank);
      entry = arith::MinUIOp::create(b, entry, c32(orderCapacity - 1));
      Value ranked = ptx.emit({i32}, {orderAt(entry)}, "ld.shared.u32 $0, [$1];", "=r,r");
      tile = arith::SelectOp::create(b, fits, ranked, tile);
    }
    Item item = makeItem(indexOf(tile), indexOf(arith::RemUIOp::create(b, pair, heads32)),
                         indexOf(arith::DivUIOp::create(b, pair, heads32)));
    item.work = w32;
    return item;
  };
  // Runs `body(item, carried) -> carried` over this block's items. With the
  // dynamic scheduler, `next(carried)` gives each next item's index (the
  // same in every thread running the loop); one >= the item count ends it.
  auto forEachItem = [&](ValueRange init,
                         const std::function<SmallVector<Value>(const Item &, ValueRange)> &body,
                         const std::function<Value(ValueRange)> &next = nullptr) {
    if (!persistent) {
      Value tile = arith::SubIOp::create(
          b, arith::SubIOp::create(b, gpu::GridDimOp::create(b, gpu::Dimension::x), lb.index(1)),
          gpu::BlockIdOp::create(b, gpu::Dimension::x));
      return body(makeItem(tile, gpu::BlockIdOp::create(b, gpu::Dimension::y),
                           gpu::BlockIdOp::create(b, gpu::Dimension::z)),
                  init);
    }
    Value total =
        crossHead ? (Value)arith::IndexCastUIOp::create(b, b.getIndexType(), itemTotal32)
                  : arith::MulIOp::create(b, qTiles, arith::MulIOp::create(b, heads, lb.dim(q, 0)));
    if (dynamic) {
      Value total32 = crossHead ? itemTotal32 : toI32(total).getResult();
      SmallVector<Type> passedTypes(init.getTypes());
      passedTypes.push_back(i32);
      return kb.whileWithState(
          init, passedTypes,
          [&](ValueRange carried) {
            Value w = next(carried);
            SmallVector<Value> passed(carried);
            passed.push_back(w);
            return std::make_pair(
                arith::CmpIOp::create(b, arith::CmpIPredicate::ult, w, total32).getResult(),
                passed);
          },
          [&](ValueRange passed) { return body(itemOf(passed.back()), passed.drop_back()); });
    }
    return kb.forWithState(gpu::BlockIdOp::create(b, gpu::Dimension::x), total,
                           gpu::GridDimOp::create(b, gpu::Dimension::x), init,
                           [&](Value w, ValueRange carried) { return body(itemOf(w), carried); });
  };

  // Without `arrive`, only the bytes are expected: the caller arrives later.
  // Cross-head tiles: a stage holds kvSlots tiles (stageBytes each); slot 1,
  // the item's second (batch, KV head)'s, is loaded where the item is mixed,
  // its bytes expected before the arrival, which could otherwise complete
  // the phase with only slot 0's landed.
  auto loadTile = [&](const Item &item, Value kt, Value stage, Value bar, int64_t offset,
                      int64_t stageBytes, int64_t width, Value tensorMap, bool arrive = true) {
    Value row = toI32(arith::MulIOp::create(b, kt, lb.index(blockK)));
    auto copy = [&](int64_t slot, Value kvHead, Value batch) {
      for (int64_t box = 0; box < width / kBoxCols; ++box)
        ptx.tmaLoad(at(arith::AddIOp::create(
                        b, c32(offset + slot * stageBytes + box * kvBoxBytes),
                        arith::MulIOp::create(b, stage, c32(kvSlots * stageBytes)))),
                    tensorMap, {c32(box * kBoxCols), row, kvHead, batch}, bar);
    };
    if (crossHead)
      lb.ifThen(item.mixed, [&] {
        ptx.expectTx(bar, blockK * width * 2);
        copy(1, item.secondKvHead, item.secondBatch);
      });
    if (arrive)
      ptx.arriveExpectTx(bar, blockK * width * 2);
    else
      ptx.expectTx(bar, blockK * width * 2);
    copy(0, item.coordKvHead, item.coordBatch);
  };

  ScoreEmitter emitter(op, b, seqQ, seqK, map);
  Value layout = op.getBlockMask() ? map.lookup(op.getBlockMask()) : Value();
  // The ids of `count` rows or keys from `first`, count / 32 per lane (lane
  // + 32 i; `consecutive`: 32 lane + i, for one vector store), past `limit`
  // clamped to the last one (that only repeats a real row's or key's id, so
  // it can widen a range but never hide a visible pair).
  auto laneIds = [&](Value ids, Value batch, Value first, int64_t count, Value limit,
                     bool consecutive = false) {
    Value last = arith::SubIOp::create(b, limit, lb.index(1));
    SmallVector<Value> loaded;
    int64_t perLane = count / 32;
    for (int64_t i = 0; i < perLane; ++i) {
      Value idx = consecutive
                      ? (Value)arith::AddIOp::create(
                            b, arith::AddIOp::create(
                                   b, first, arith::MulIOp::create(b, lane, lb.index(perLane))),
                            lb.index(i))
                      : (Value)arith::AddIOp::create(
                            b, first, arith::AddIOp::create(b, lane, lb.index(32 * i)));
      loaded.push_back(memref::LoadOp::create(
          b, ids, ValueRange{batch, arith::MinSIOp::create(b, idx, last)}));
    }
    return loaded;
  };
  // [min, max] of the ids of `count` rows from `first`, the same in every
  // lane of the warp.
  auto warpRange = [&](Value ids, Value batch, Value first, int64_t count, Value limit) {
    Value lo, hi;
    for (Value id : laneIds(ids, batch, first, count, limit)) {
      lo = lo ? (Value)arith::MinSIOp::create(b, lo, id) : id;
      hi = hi ? (Value)arith::MaxSIOp::create(b, hi, id) : id;
    }
    for (int32_t offset : {16, 8, 4, 2, 1}) {
      auto shuffle = [&](Value v) {
        return gpu::ShuffleOp::create(b, v, offset, 32, gpu::ShuffleMode::XOR)
            .getShuffleResult();
      };
      lo = arith::MinSIOp::create(b, lo, shuffle(lo));
      hi = arith::MaxSIOp::create(b, hi, shuffle(hi));
    }
    return std::make_pair(lo, hi);
  };
  auto vote = [&](Value predicate, NVVM::VoteSyncKind kind) -> Value {
    return NVVM::VoteSyncOp::create(b, b.getI1Type(), c32(-1), predicate, kind);
  };
  auto bitAt = [&](Value flag, int64_t bit) -> Value {
    return arith::ShLIOp::create(b, arith::ExtUIOp::create(b, i32, flag), c32(bit));
  };
  // The tile-list word of stage `stage` (shared memory).
  auto wordAddress = [&](Value stage) {
    return at(arith::AddIOp::create(b, c32(wordOffset), arith::MulIOp::create(b, stage, c32(4))));
  };

  // The producer walks the tile list's candidates in batches, in key order.
  // (From the diagonal down instead, causal documents with sorted ids found
  // their live tiles first, but the item's last live tile is known only at
  // the end of the walk over the dead ones: the consumers waited for it,
  // documents -10%.) A batch's classification is one round of independent
  // loads: block-sparse tiles 32 at once (lane i loads the layout byte of
  // tile first + i, a ballot packs the answers), document tiles 512 / blockK
  // at once (each lane loads blockK / 32 key ids per tile, 16 loads in
  // flight; 8 in the persistent producer, whose item walk holds registers
  // too: 16 spilled there under its 40). Two votes per document tile: live
  // when some key's id lies in the q tile's [lo, hi] (no key id in it: no key
  // id equals any query's, since every query id lies in it), full when every
  // key's id is the q tile's single id. Called by the whole, converged
  // producer warp. Documents use all four producer warps, each on its own
  // batch: a round of 4 batches, the bits exchanged through shared memory
  // and a named barrier (one warp alone waited a load round trip per 4
  // tiles: 24 of them at 16k before the first live tile of the last
  // document).
  int64_t batchTiles = classifyDocuments ? (persistent ? 256 : 512) / blockK : 32;
  int64_t roundTiles = walkWarps * batchTiles; // <= 32: one bit each in an i32
  struct Batch {
    Value live, full; // bit t: tile first + t
  };
  // What the classification needs of an item, computed once per item.
  struct ItemClasses {
    Value layoutRow, layoutBatch, layoutHead, qDocLo, qDocHi;
  };
  auto classesOf = [&](const Item &item) {
    ItemClasses c;
    if (skipEmptyTiles) {
      c.layoutRow = arith::DivUIOp::create(b, item.rowBegin,
                                           lb.index(op.getBlockSparseAttr().getBlockQ()));
      c.layoutBatch = emitter.layoutIndex(layout, 0, item.batch);
      c.layoutHead = emitter.layoutIndex(layout, 1, item.head);
    }
    if (classifyDocuments)
      std::tie(c.qDocLo, c.qDocHi) =
          warpRange(map.lookup(op.getQDocIds()), item.batch, item.rowBegin, blockQ, seqQ);
    return c;
  };
  auto classifyBatch = [&](const Item &item, const ItemClasses &c, Value first,
                           Value remaining) {
    // Tiles t < min(remaining, batchTiles) are candidates (none for a warp
    // past the end, whose remaining is <= 0; its tiles clamp to the range's
    // last).
    Value remaining32 = toI32(arith::MaxSIOp::create(
        b, arith::MinSIOp::create(b, remaining, lb.index(batchTiles)), lb.index(0)));
    Value candidates = arith::SubIOp::create(b, arith::ShLIOp::create(b, c32(1), remaining32),
                                             c32(1));
    if (batchTiles == 32)
      candidates = arith::SelectOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, remaining32, c32(32)), c32(-1),
          candidates);
    Batch batch{candidates, c32(0)};
    Value lastCandidate = arith::AddIOp::create(
        b, first, arith::SubIOp::create(b, arith::MinSIOp::create(b, remaining, lb.index(batchTiles)),
                                        lb.index(1)));
    if (skipEmptyTiles) {
      Value tile = arith::MinSIOp::create(b, arith::AddIOp::create(b, first, lane), lastCandidate);
      Value col = arith::DivUIOp::create(b, arith::MulIOp::create(b, tile, lb.index(blockK)),
                                         lb.index(op.getBlockSparseAttr().getBlockK()));
      Value byte = memref::LoadOp::create(
          b, layout, ValueRange{c.layoutBatch, c.layoutHead, c.layoutRow, col});
      Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::ne, byte,
                                         arith::ConstantIntOp::create(b, 0, 8));
      Value ballot =
          NVVM::VoteSyncOp::create(b, i32, c32(-1), kept, NVVM::VoteSyncKind::ballot);
      batch.live = arith::AndIOp::create(b, batch.live, ballot);
    }
    if (classifyDocuments) {
      Value qLo = c.qDocLo, qHi = c.qDocHi;
      Value qSingle = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, qLo, qHi);
      SmallVector<SmallVector<Value>> ids;
      for (int64_t t = 0; t < batchTiles; ++t) {
        Value tile = arith::MinSIOp::create(b, arith::AddIOp::create(b, first, lb.index(t)),
                                            lastCandidate);
        ids.push_back(laneIds(map.lookup(op.getKvDocIds()), item.batch,
                              arith::MulIOp::create(b, tile, lb.index(blockK)), blockK, seqK));
      }
      Value live = c32(0), full = c32(0);
      for (int64_t t = 0; t < batchTiles; ++t) {
        Value inRange = lb.boolean(false), single = lb.boolean(true);
        for (Value id : ids[t]) {
          inRange = arith::OrIOp::create(
              b, inRange,
              arith::AndIOp::create(
                  b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, id, qLo),
                  arith::CmpIOp::create(b, arith::CmpIPredicate::sle, id, qHi)));
          single = arith::AndIOp::create(
              b, single, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, id, qLo));
        }
        live = arith::OrIOp::create(b, live, bitAt(vote(inRange, NVVM::VoteSyncKind::any), t));
        full = arith::OrIOp::create(
            b, full,
            bitAt(arith::AndIOp::create(b, qSingle, vote(single, NVVM::VoteSyncKind::all)), t));
      }
      batch.live = arith::AndIOp::create(b, batch.live, live);
      batch.full = full;
    }
    return batch;
  };

  // The document tile summary (see tileSummary): entry p = batch * kTiles +
  // k tile, and the walk starts: entry batch * qTiles + q tile; written by
  // the consumer warps before their first item, read by the walk warps.
  auto startAt = [&](Value entry) {
    return at(arith::AddIOp::create(b, c32(startsOffset),
                                    arith::MulIOp::create(b, toI32(entry), c32(4))));
  };
  auto summaryAt = [&](Value entry) {
    if (entry.getType().isIndex())
      entry = toI32(entry);
    return at(arith::AddIOp::create(b, c32(summaryOffset), arith::MulIOp::create(b, entry, c32(8))));
  };
  // Per batch: k tiles (the summary's entries) and q tiles (the walk
  // starts'); whether both tables fit this launch.
  struct SummaryExtent {
    Value kTiles, qTiles, kEntries, qEntries, fits;
  };
  auto summaryExtent = [&]() {
    Value batches = lb.dim(map.lookup(op.getKvDocIds()), 0);
    SummaryExtent e;
    // (Not arith.ceildivui, as kTileCount.)
    e.qTiles = arith::DivUIOp::create(
        b, arith::AddIOp::create(b, seqQ, lb.index(blockQ - 1)), lb.index(blockQ));
    e.kTiles = kTileCount();
    e.qEntries = arith::MulIOp::create(b, e.qTiles, batches);
    e.kEntries = arith::MulIOp::create(b, e.kTiles, batches);
    e.fits = arith::AndIOp::create(
        b,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ule, e.kEntries,
                              lb.index(summaryCapacity)),
        arith::CmpIOp::create(b, arith::CmpIPredicate::ule, e.qEntries,
                              lb.index(summaryCapacity)));
    return e;
  };
  // Warp `w` of `warps` over `count` entries (batch * `tiles` + tile, tiles
  // of `size` rows of `ids`, `limit` long), unroll a round (their loads in
  // flight together): `finish(entry, lo, hi, fresh)` gets the tile's
  // warp-wide [min, max] id (fresh: not a clamped repeat of the last entry).
  auto warpRangeRounds =
      [&](Value w, int64_t warps, Value count, Value ids, Value tiles, int64_t size,
          Value limit, const std::function<void(Value, Value, Value, Value)> &finish) {
        Value last = arith::SubIOp::create(b, count, lb.index(1));
        auto redux = [&](StringRef kind, Value v) {
          return ptx.emit({i32}, {v},
                          ("redux.sync." + kind + ".s32 $0, $1, 0xffffffff;").str(), "=r,r");
        };
        lb.forLoop(
            arith::MulIOp::create(b, w, lb.index(summaryUnroll)), count,
            [&](Value base) {
              SmallVector<Value> entries;
              SmallVector<SmallVector<Value>> loaded;
              for (int64_t u = 0; u < summaryUnroll; ++u) {
                Value entry = arith::MinUIOp::create(
                    b, arith::AddIOp::create(b, base, lb.index(u)), last);
                entries.push_back(entry);
                Value tile = arith::RemUIOp::create(b, entry, tiles);
                loaded.push_back(laneIds(ids, arith::DivUIOp::create(b, entry, tiles),
                                         arith::MulIOp::create(b, tile, lb.index(size)), size,
                                         limit));
              }
              for (int64_t u = 0; u < summaryUnroll; ++u) {
                Value lo = loaded[u][0], hi = loaded[u][0];
                for (Value id : ArrayRef<Value>(loaded[u]).drop_front()) {
                  lo = arith::MinSIOp::create(b, lo, id);
                  hi = arith::MaxSIOp::create(b, hi, id);
                }
                lo = redux("min", lo);
                hi = redux("max", hi);
                finish(entries[u], lo, hi,
                       arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                                             arith::AddIOp::create(b, base, lb.index(u)), count));
              }
            },
            lb.index(warps * summaryUnroll));
      };
  // Writes the summary, then the walk starts: each k tile's [min, max] key
  // id (clamped at Sk - 1 as the walk's: a repeated real id), then each q
  // tile's first k tile whose range meets its own [min, max] (a scan of 32
  // entries a step). The consumer warps write them before their first item,
  // with the registers they hold then (in the producer warps, at 56
  // registers, the consumers spilled 4 B however few entries a round), and
  // release both to the walk warps on a named barrier of the whole block.
  auto writeSummary = [&](Value w, int64_t warps, const SummaryExtent &e) {
    Value lane0 = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, lb.index(0));
    Value kvIds = map.lookup(op.getKvDocIds()), qIds = map.lookup(op.getQDocIds());
    warpRangeRounds(
        w, warps, e.kEntries, kvIds, e.kTiles, blockK, seqK,
        [&](Value entry, Value lo, Value hi, Value fresh) {
          lb.ifThen(arith::AndIOp::create(b, lane0, fresh), [&] {
            ptx.emit({}, {summaryAt(entry), lo, hi}, "st.shared.v2.u32 [$0], {$1, $2};",
                     "r,r,r");
          });
        });
    // Every consumer warp's entries written.
    ptx.namedBarrierSync(c32(kConsumersBarrier), warps * 32);
    Value kTiles = toI32(e.kTiles);
    Value lastTile = arith::SubIOp::create(b, kTiles, c32(1));
    warpRangeRounds(
        w, warps, e.qEntries, qIds, e.qTiles, blockQ, seqQ,
        [&](Value entry, Value lo, Value hi, Value fresh) {
          Value entryBase =
              arith::MulIOp::create(b, toI32(arith::DivUIOp::create(b, entry, e.qTiles)), kTiles);
          SmallVector<Value> exit = kb.whileWithState(
              {c32(0)}, {i32, i32},
              [&](ValueRange state) {
                Value candidate = arith::AddIOp::create(b, state[0], toI32(lane));
                Value both = ptx.emit(
                    {i32, i32},
                    {summaryAt(arith::AddIOp::create(
                        b, entryBase, arith::MinSIOp::create(b, candidate, lastTile)))},
                    "ld.shared.v2.u32 {$0, $1}, [$2];", "=r,=r,r");
                Value kLo = LLVM::ExtractValueOp::create(b, both, 0);
                Value kHi = LLVM::ExtractValueOp::create(b, both, 1);
                Value meets = arith::AndIOp::create(
                    b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, candidate, kTiles),
                    arith::AndIOp::create(
                        b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, kHi, lo),
                        arith::CmpIOp::create(b, arith::CmpIPredicate::sle, kLo, hi)));
                Value ballot = NVVM::VoteSyncOp::create(b, i32, c32(-1), meets,
                                                        NVVM::VoteSyncKind::ballot);
                Value more = arith::AndIOp::create(
                    b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, ballot, c32(0)),
                    arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                                          arith::AddIOp::create(b, state[0], c32(32)), kTiles));
                return std::make_pair(more, SmallVector<Value>{state[0], ballot});
              },
              [&](ValueRange passed) {
                return SmallVector<Value>{arith::AddIOp::create(b, passed[0], c32(32))};
              });
          // The lowest set bit of the exit's ballot (none: no k tile meets).
          Value lowest = ptx.emit({i32}, {exit[1]},
                                  "{ .reg .b32 attn_rev; brev.b32 attn_rev, $1; "
                                  "clz.b32 $0, attn_rev; }",
                                  "=r,r");
          Value start = arith::SelectOp::create(
              b, arith::CmpIOp::create(b, arith::CmpIPredicate::ne, exit[1], c32(0)),
              arith::AddIOp::create(b, exit[0], lowest), kTiles);
          lb.ifThen(arith::AndIOp::create(b, lane0, fresh), [&] {
            ptx.emit({}, {startAt(entry), start}, "st.shared.u32 [$0], $1;", "r,r");
          });
        });
  };
  // Writes the item order (see itemOrder) with the consumers' `threads`
  // threads (thread `t` of them): each k tile's first and last key id, then
  // each q tile's estimate (the k tiles of its range whose [first, last]
  // meets the q tile's [first, last] id), then each q tile's rank in its
  // batch (more k tiles first; among equals the later q tile, as the
  // q-tile-descending order), the q tile written at its rank. Integer
  // counts: every block computes the same permutation, so the item map
  // stays a bijection whatever the ids.
  auto writeItemOrder = [&](Value t, int64_t threads) {
    Value batches = lb.dim(q, 0);
    Value kTiles = kTileCount();
    Value kvIds = map.lookup(op.getKvDocIds()), qIds = map.lookup(op.getQDocIds());
    Value step = lb.index(threads);
    auto idAt = [&](Value ids, Value batch, Value pos) -> Value {
      return memref::LoadOp::create(b, ids, ValueRange{batch, pos});
    };
    auto scratchAt = [&](int64_t offset, Value entry, int64_t bytes) {
      return at(arith::AddIOp::create(b, c32(offset),
                                      arith::MulIOp::create(b, toI32(entry), c32(bytes))));
    };
    // The ids of a tile's first and last row (`size` rows from tile `tile`,
    // `limit` long).
    auto tileEnds = [&](Value ids, Value batch, Value tile, int64_t size, Value limit) {
      Value first = arith::MulIOp::create(b, tile, lb.index(size));
      Value last = arith::SubIOp::create(
          b, arith::MinUIOp::create(b, arith::AddIOp::create(b, first, lb.index(size)), limit),
          lb.index(1));
      return std::make_pair(idAt(ids, batch, first), idAt(ids, batch, last));
    };
    auto load = [&](Value address) {
      return ptx.emit({i32}, {address}, "ld.shared.u32 $0, [$1];", "=r,r");
    };
    // Entries t, t + threads, ... below `count`, in rounds of `threads` (the
    // same trip count in every thread; entries past the end skip the body),
    // so that the barrier after them is one instruction for the whole warp.
    // (A thread-strided loop let LLVM duplicate it into the branch that skips
    // the loops and the one that runs them: with fewer entries than threads
    // the lanes of a warp split between two `bar.sync`s and the block hung.)
    // The barriers are the non-aligned `barrier.sync` besides.
    auto forEachEntry = [&](Value count, const std::function<void(Value)> &body) {
      lb.forLoop(
          lb.index(0), count,
          [&](Value round) {
            Value entry = arith::AddIOp::create(b, round, t);
            lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, entry, count),
                      [&] { body(entry); });
          },
          step);
    };
    forEachEntry(arith::MulIOp::create(b, batches, kTiles), [&](Value entry) {
      auto [lo, hi] = tileEnds(kvIds, arith::DivUIOp::create(b, entry, kTiles),
                               arith::RemUIOp::create(b, entry, kTiles), blockK, seqK);
      ptx.emit({}, {scratchAt(orderScratchK, entry, 8), lo, hi}, "st.shared.v2.u32 [$0], {$1, $2};",
               "r,r,r");
    });
    ptx.namedBarrierSyncDivergent(c32(kConsumersBarrier), threads);
    Value qEntries = arith::MulIOp::create(b, batches, qTiles);
    forEachEntry(qEntries, [&](Value entry) {
      Value batch = arith::DivUIOp::create(b, entry, qTiles);
      Value tile = arith::RemUIOp::create(b, entry, qTiles);
      auto [qLo, qHi] = tileEnds(qIds, batch, tile, blockQ, seqQ);
      KTileRange range = emitKTileRange(b, plan, tile, seqQ, seqK, /*withFullRange=*/false);
      Value base = arith::MulIOp::create(b, batch, kTiles);
      Value count = kb.forWithState(
          range.begin, range.end, lb.index(1), {c32(0)},
          [&](Value kt, ValueRange carried) {
            Value both = ptx.emit(
                {i32, i32}, {scratchAt(orderScratchK, arith::AddIOp::create(b, base, kt), 8)},
                "ld.shared.v2.u32 {$0, $1}, [$2];", "=r,=r,r");
            Value kLo = LLVM::ExtractValueOp::create(b, both, 0);
            Value kHi = LLVM::ExtractValueOp::create(b, both, 1);
            Value meets = arith::AndIOp::create(
                b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, kHi, qLo),
                arith::CmpIOp::create(b, arith::CmpIPredicate::sle, kLo, qHi));
            return SmallVector<Value>{arith::AddIOp::create(
                b, carried[0], arith::ExtUIOp::create(b, i32, meets))};
          })[0];
      ptx.emit({}, {scratchAt(orderScratchLength, entry, 4), count}, "st.shared.u32 [$0], $1;",
               "r,r");
    });
    ptx.namedBarrierSyncDivergent(c32(kConsumersBarrier), threads);
    forEachEntry(qEntries, [&](Value entry) {
      Value tile = toI32(arith::RemUIOp::create(b, entry, qTiles));
      Value base = arith::SubIOp::create(b, entry, arith::RemUIOp::create(b, entry, qTiles));
      Value mine = load(scratchAt(orderScratchLength, entry, 4));
      Value rank = kb.forWithState(
          lb.index(0), qTiles, lb.index(1), {c32(0)},
          [&](Value other, ValueRange carried) {
            Value theirs =
                load(scratchAt(orderScratchLength, arith::AddIOp::create(b, base, other), 4));
            Value before = arith::OrIOp::create(
                b, arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, theirs, mine),
                arith::AndIOp::create(
                    b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, theirs, mine),
                    arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, toI32(other), tile)));
            return SmallVector<Value>{arith::AddIOp::create(
                b, carried[0], arith::ExtUIOp::create(b, i32, before))};
          })[0];
      ptx.emit({}, {orderAt(arith::AddIOp::create(b, toI32(base), rank)), tile},
               "st.shared.u32 [$0], $1;", "r,r");
    });
    // The scratch lies over the K / V stages, which the producer's TMA loads
    // (the async proxy) write next.
    ptx.fenceProxyAsync();
  };

  // Whether the consumers' block-start tables (the summary, where
  // `summaryFits` is given, and the item order) are written this launch, to
  // be released to the producer; null without either.
  // (With the item order always: its header is written every launch.)
  auto blockStartReleased = [&](Value summaryFits) -> Value {
    return itemOrder ? lb.boolean(true) : summaryFits;
  };

  Value firstThread = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, lb.index(0));
  lb.ifThen(firstThread, [&] {
    // Released by one lane of each consumer warp once its last S = Q K^T of
    // an item is done.
    for (int64_t buffer = 0; buffer < qBuffers; ++buffer) {
      ptx.mbarrierInit(qFullBar(c32(buffer)), 1);
      // One lane of each consumer warp (dynamic scheduler: the lane that
      // read the buffer's item index; see consumerNextItem).
      if (persistent)
        ptx.mbarrierInit(qEmptyBar(c32(buffer)), consumerWarps);
    }
    for (int64_t s = 0; s < stages; ++s) {
      // Staged key ids: every lane of the producer warp arrives (after its
      // own id stores).
      ptx.mbarrierInit(at(c32(barOffset + 8 + 8 * (stages * KFull + s))), stagedDocIds ? 32 : 1);
      ptx.mbarrierInit(at(c32(barOffset + 8 + 8 * (stages * VFull + s))), 1);
      // Released by one lane of each consumer warp.
      ptx.mbarrierInit(at(c32(barOffset + 8 + 8 * (stages * KEmpty + s))), consumerWarps);
      ptx.mbarrierInit(at(c32(barOffset + 8 + 8 * (stages * VEmpty + s))), consumerWarps);
    }
    ptx.mbarrierInitFence();
  });
  gpu::BarrierOp::create(b);

  // Warp specialization: warpgroup 0 produces (one thread issues every TMA
  // load, on few registers), warpgroups 1 and 2 consume (with the registers
  // the producer gave up). Each role is one branch, as setmaxnreg requires.
  Value isProducerGroup = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, wg, lb.index(0));
  auto roles = scf::IfOp::create(b, TypeRange(), isProducerGroup, /*withElseRegion=*/true);
  b.setInsertionPointToStart(&roles.getThenRegion().front());
  ptx.setMaxRegisters(registers.producer, /*increase=*/false);
  // The producer waits for the consumers' summary (see writeSummary) and
  // item order (see writeItemOrder), where this launch has either.
  SummaryExtent walkSummary;
  if (tileSummary)
    walkSummary = summaryExtent();
  if (Value released = blockStartReleased(tileSummary ? walkSummary.fits : Value()))
    lb.ifThen(released, [&] { ptx.namedBarrierSync(c32(kSummaryBarrier), threads); });

  // One thread issues; with a tile list its whole warp (documents: the
  // whole warpgroup) classifies (votes, a ballot) and thread 0 issues.
  Value producerWarp = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warp, lb.index(0));
  Value laneZeroOfAll = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, lb.index(0));
  auto issuer = [&](const std::function<void()> &body) {
    if (tileList)
      lb.ifThen(walkWarps > 1 ? firstThread : laneZeroOfAll, body);
    else
      body();
  };
  // The `count`-th tile of the block into stage count % 2. From the stage's
  // second fill on, it first waits until every consumer warp released the
  // stage's previous tile (its empty barrier's phase round - 1). With a
  // tile list, `word` goes next to the stage (the full barrier's arrival
  // releases it to the consumers); a null `kt` ends an item without live
  // tiles: bare arrivals on both full barriers, no loads.
  auto issueTile = [&](const Item &item, Value kt, Value count, Value word) {
    auto [stage, round] = stageOf(count);
    Value refill = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, round, c32(1));
    Value emptyParity = arith::RemUIOp::create(b, arith::SubIOp::create(b, round, c32(1)), c32(2));
    // Staged key ids: the whole producer warp runs this, lane 0 issues.
    // Lane 0 expects K's bytes and starts its TMA; then each lane loads its
    // blockK / 32 consecutive ids (clamped at Sk - 1, as the walk; they hit
    // in L1 / L2 after the walk's loads), writes them and arrives on K's
    // full barrier (32 arrivals), so the consumers see the ids with K.
    // (Loaded before the stage wait instead, they were live across it: 16
    // bytes spilled under the producer's 40 registers.)
    auto single = [&](const std::function<void()> &body) {
      if (stagedDocIds)
        lb.ifThen(laneZeroOfAll, body);
      else
        body();
    };
    int64_t idsPerLane = blockK / 32;
    lb.ifThen(refill, [&] { ptx.wait(stageBar(KEmpty, stage), emptyParity); });
    if (tileList)
      single([&] { ptx.emit({}, {wordAddress(stage), word}, "st.shared.u32 [$0], $1;", "r,r"); });
    if (!kt) {
      single([&] {
        lb.ifThen(refill, [&] { ptx.wait(stageBar(VEmpty, stage), emptyParity); });
        if (stagedDocIds)
          ptx.emit({}, {stageBar(KFull, stage)}, "mbarrier.arrive.shared::cta.b64 _, [$0], 32;",
                   "r");
        else
          ptx.arrive(stageBar(KFull, stage));
        ptx.arrive(stageBar(VFull, stage));
      });
      return;
    }
    if (!stagedDocIds) {
      loadTile(item, kt, stage, stageBar(KFull, stage), kOffset, kStageBytes, d, kMap);
    } else {
      single([&] {
        loadTile(item, kt, stage, stageBar(KFull, stage), kOffset, kStageBytes, d, kMap,
                 /*arrive=*/false);
      });
      SmallVector<Value> ids =
          laneIds(map.lookup(op.getKvDocIds()), item.batch,
                  arith::MulIOp::create(b, kt, lb.index(blockK)), blockK, seqK, /*consecutive=*/true);
      Value dst = arith::AddIOp::create(
          b, idSlot(count),
          toI32(arith::MulIOp::create(b, lane, lb.index(idsPerLane * 4))));
      SmallVector<Value> operands = {dst};
      operands.append(ids.begin(), ids.end());
      std::string regs, constraints = "r";
      for (int64_t i = 0; i < idsPerLane; ++i) {
        regs += (i ? ", $" : "$") + std::to_string(i + 1);
        constraints += ",r";
      }
      ptx.emit({}, operands,
               "st.shared.v" + std::to_string(idsPerLane) + ".u32 [$0], {" + regs + "};",
               constraints);
      ptx.arrive(stageBar(KFull, stage));
    }
    single([&] {
      lb.ifThen(refill, [&] { ptx.wait(stageBar(VEmpty, stage), emptyParity); });
      loadTile(item, kt, stage, stageBar(VFull, stage), vOffset, vStageBytes, dv, vMap);
    });
  };
  // Who issues tiles: the issuer, or (staged key ids) the whole first
  // producer warp.
  auto tileIssuer = [&](const std::function<void()> &body) {
    if (stagedDocIds)
      lb.ifThen(producerWarp, body);
    else
      issuer(body);
  };
  lb.ifThen(walkWarps > 1 ? lb.boolean(true) : tileList ? producerWarp : firstThread, [&] {
    // Carried over items: the number of items so far, of tiles loaded, of
    // walk rounds.
    // Dynamic scheduler: the issuing thread waits for the Q buffer (as the
    // static walk does per item), takes the next index, writes it to the
    // buffer's slot and, for an index past the end, arrives on the buffer's
    // q-full barrier without a load (the consumers' end marker); a tile-list
    // walk's other lanes (documents: warps) read the index back after a
    // warp (named) barrier. The slot of buffer n % 2 is rewritten only at
    // item n + 2, after the next item's barrier: no lane reads a stale one.
    auto nextItem = [&](ValueRange carried) -> Value {
      auto [buffer, use] = qBufferOf(carried[0]);
      Value taken;
      issuer([&] {
        Value refill = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, use, c32(1));
        Value parity = arith::RemUIOp::create(b, arith::SubIOp::create(b, use, c32(1)), c32(2));
        lb.ifThen(refill, [&] { ptx.wait(qEmptyBar(buffer), parity); });
        taken = takeItem();
        ptx.emit({}, {slotAddress(buffer), taken}, "st.shared.u32 [$0], $1;", "r,r");
        lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::uge, taken, itemTotal32),
                  [&] { ptx.arrive(qFullBar(buffer)); });
      });
      if (!tileList)
        return taken;
      if (walkWarps > 1)
        ptx.namedBarrierSync(c32(kWalkBarrier), walkWarps * 32);
      else
        ptx.warpSync();
      return ptx.emit({i32}, {slotAddress(buffer)}, "ld.shared.u32 $0, [$1];", "=r,r");
    };
    forEachItem({c32(0), c32(0), c32(0)}, [&](const Item &item, ValueRange items) {
    Value itemCount = items[0];
    KTileRange range = emitKTileRange(b, plan, item.tile, seqQ, seqK, /*withFullRange=*/false);
    issuer([&] {
      auto [buffer, use] = qBufferOf(itemCount);
      if (persistent && !dynamic) {
        // From its second fill on, a Q buffer is refilled once every
        // consumer warp is done with the Q it held (item n - 2's).
        Value refill = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, use, c32(1));
        Value parity = arith::RemUIOp::create(b, arith::SubIOp::create(b, use, c32(1)), c32(2));
        lb.ifThen(refill, [&] { ptx.wait(qEmptyBar(buffer), parity); });
      }
      Value full = qFullBar(buffer);
      ptx.arriveExpectTx(full, blockQ * d * 2);
      Value itemRow = crossHead ? Value() : toI32(item.rowBegin).getResult();
      Value base = arith::MulIOp::create(b, buffer, c32(qBytes));
      // Cross-head tiles: each warpgroup's 64 rows from its slice's pair.
      for (int64_t g = 0; g < (crossHead ? consumerGroups : 1); ++g) {
        Item slice = crossHead ? sliceItem(item.work, c32(g)) : item;
        Value row = crossHead ? slice.sliceRow : itemRow;
        for (int64_t box = 0; box < d / kBoxCols; ++box)
          ptx.tmaLoad(at(arith::AddIOp::create(
                          b, base, c32(box * qBoxBytes + g * kRowsPerWarpgroup * 128))),
                      qMap, {c32(box * kBoxCols), row, slice.coordHead, slice.coordBatch}, full);
      }
    });
    if (!tileList) {
      Value loaded = kb.forWithState(range.begin, range.end, lb.index(1), {items[1]},
                                     [&](Value kt, ValueRange count) {
                                       issueTile(item, kt, count[0], Value());
                                       return SmallVector<Value>{
                                           arith::AddIOp::create(b, count[0], c32(1))};
                                     })[0];
      return SmallVector<Value>{arith::AddIOp::create(b, itemCount, c32(1)), loaded, items[2]};
    }
    ItemClasses classes = classesOf(item);
    // Where the walk begins: with the summary, its q tile's entry in the
    // start table (the first k tile whose range meets the q tile's; kTiles
    // for none), never before the plan's range.
    Value walkBegin = range.begin;
    if (tileSummary) {
      auto fromTable = [&]() -> SmallVector<Value> {
        Value start = ptx.emit(
            {i32},
            {startAt(arith::AddIOp::create(b, arith::MulIOp::create(b, item.batch, walkSummary.qTiles),
                                           item.tile))},
            "ld.shared.u32 $0, [$1];", "=r,r");
        return {arith::MaxSIOp::create(
            b, range.begin, arith::IndexCastOp::create(b, b.getIndexType(), start))};
      };
      walkBegin = kb.ifWithResults(walkSummary.fits, {b.getIndexType()}, fromTable,
                                   [&] { return SmallVector<Value>{range.begin}; })[0];
    }
    // Carried: the tiles loaded, and the live tile found last, not yet
    // issued (its word, -1 for none): a tile is issued once the next live one
    // is found, or marked last when none is. An end word in a stage of its
    // own instead made every item's consumers wait, after their last tile,
    // for the producer to see that stage released (the V of the tile before
    // the last) and fill it: a round trip through two parked warps per item,
    // block-sparse 90% -20%.
    auto issueWord = [&](Value word, Value count) {
      Value kt = arith::IndexCastOp::create(b, b.getIndexType(),
                                            arith::ShRUIOp::create(b, word, c32(kWordShift)));
      issueTile(item, kt, count, word);
    };
    // Each round: this warp's batch, then (documents) the exchange.
    auto classifyRound = [&](Value first, Value remaining, Value round) {
      Value mine = arith::MulIOp::create(b, warp, lb.index(batchTiles));
      Batch batch = classifyBatch(item, classes, arith::AddIOp::create(b, first, mine),
                                  arith::SubIOp::create(b, remaining, mine));
      if (walkWarps == 1)
        return batch;
      Value slots = arith::AddIOp::create(
          b, c32(exchangeOffset),
          arith::MulIOp::create(b, arith::RemUIOp::create(b, round, c32(2)),
                                c32(walkWarps * 8)));
      auto slot = [&](Value w, int64_t word) {
        return at(arith::AddIOp::create(
            b, slots, arith::AddIOp::create(b, arith::MulIOp::create(b, w, c32(8)), c32(word))));
      };
      lb.ifThen(laneZeroOfAll, [&] {
        ptx.emit({}, {slot(toI32(warp), 0), batch.live}, "st.shared.u32 [$0], $1;", "r,r");
        ptx.emit({}, {slot(toI32(warp), 4), batch.full}, "st.shared.u32 [$0], $1;", "r,r");
      });
      ptx.namedBarrierSync(c32(kWalkBarrier), walkWarps * 32);
      Batch all{c32(0), c32(0)};
      for (int64_t w = 0; w < walkWarps; ++w) {
        auto load = [&](int64_t word) {
          return arith::ShLIOp::create(
              b, ptx.emit({i32}, {slot(c32(w), word)}, "ld.shared.u32 $0, [$1];", "=r,r"),
              c32(w * batchTiles));
        };
        all.live = arith::OrIOp::create(b, all.live, load(0));
        all.full = arith::OrIOp::create(b, all.full, load(4));
      }
      return all;
    };
    SmallVector<Value> walked = kb.forWithState(
        walkBegin, range.end, lb.index(roundTiles), {items[1], c32(-1), items[2]},
        [&](Value first, ValueRange walkState) {
          Batch batch =
              classifyRound(first, arith::SubIOp::create(b, range.end, first), walkState[2]);
          SmallVector<Value> state = kb.forWithState(
              lb.index(0), lb.index(roundTiles), lb.index(1), walkState.drop_back(),
              [&](Value t, ValueRange pendingState) {
                Value t32 = toI32(t);
                auto bit = [&](Value bits) {
                  return arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, t32), c32(1));
                };
                return kb.ifWithResults(
                    arith::CmpIOp::create(b, arith::CmpIPredicate::ne, bit(batch.live), c32(0)),
                    {i32, i32},
                    [&] {
                      Value count = pendingState[0], pending = pendingState[1];
                      Value hasPending =
                          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, pending, c32(0));
                      count = kb.ifWithResults(
                          hasPending, {i32},
                          [&] {
                            tileIssuer([&] { issueWord(pending, count); });
                            return SmallVector<Value>{arith::AddIOp::create(b, count, c32(1))};
                          },
                          [&] { return SmallVector<Value>{count}; })[0];
                      Value kt = toI32(arith::AddIOp::create(b, first, t));
                      Value word = arith::OrIOp::create(
                          b, arith::ShLIOp::create(b, kt, c32(kWordShift)),
                          arith::ShLIOp::create(b, bit(batch.full), c32(kFullBit)));
                      return SmallVector<Value>{count, word};
                    },
                    [&] { return SmallVector<Value>(pendingState); });
              });
          state.push_back(arith::AddIOp::create(b, walkState[2], c32(1)));
          return state;
        });
    // The last live tile, marked; an item without live tiles gets an end
    // word (-1) in a stage of its own.
    Value count = walked[0], pending = walked[1];
    tileIssuer([&] {
      lb.ifThen(
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, pending, c32(0)),
          [&] { issueWord(arith::OrIOp::create(b, pending, c32(1 << kLastBit)), count); },
          [&] { issueTile(item, Value(), count, c32(-1)); });
    });
    return SmallVector<Value>{arith::AddIOp::create(b, itemCount, c32(1)),
                              arith::AddIOp::create(b, count, c32(1)), walked[2]};
    }, dynamic ? std::function<Value(ValueRange)>(nextItem) : nullptr);
  });
  b.setInsertionPointToStart(&roles.getElseRegion().front());
  ptx.setMaxRegisters(registers.consumer, /*increase=*/true);
  // Consumer warp w (0..7) holds rows 16w + g and 16w + g + 8 of the tile:
  // the wgmma accumulator layout of warpgroup w / 4, its warp w % 4.
  Value consumerWarp = arith::SubIOp::create(b, warp, lb.index(4));
  SummaryExtent extent;
  if (tileSummary) {
    extent = summaryExtent();
    lb.ifThen(extent.fits, [&] { writeSummary(consumerWarp, consumerGroups * 4, extent); });
  }
  if (itemOrder) {
    Value t = arith::SubIOp::create(b, tid, lb.index(128));
    Value fits = orderFits();
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t, lb.index(0)), [&] {
      Value tiles = toI32(qTiles);
      // (One phase, options.documentItemOrderPhases = 1: every rank.)
      Value longRanks =
          options.documentItemOrderPhases == 2
              ? arith::SelectOp::create(
                    b, fits,
                    arith::DivUIOp::create(b, arith::AddIOp::create(b, tiles, c32(1)), c32(2)),
                    tiles)
                    .getResult()
              : tiles;
      Value pairs = arith::MulIOp::create(b, toI32(heads), toI32(lb.dim(q, 0)));
      ptx.emit({}, {at(c32(orderOffset)), longRanks, arith::ExtUIOp::create(b, i32, fits), tiles,
                    pairsPerGroup(pairs)},
               "st.shared.v4.u32 [$0], {$1, $2, $3, $4};", "r,r,r,r,r");
    });
    lb.ifThen(fits, [&] { writeItemOrder(t, consumerGroups * 128); });
    // The header and the ranks, for every consumer thread's first item.
    ptx.namedBarrierSyncDivergent(c32(kConsumersBarrier), consumerGroups * 128);
  }
  if (Value released = blockStartReleased(tileSummary ? extent.fits : Value()))
    lb.ifThen(released, [&] { ptx.namedBarrierArrive(c32(kSummaryBarrier), threads); });
  // Staged key ids: this warp's named barrier (see stagedDocIds).
  Value consumerIdBarrier;
  if (stagedDocIds) {
    Value w = toI32(consumerWarp);
    consumerIdBarrier = arith::SelectOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, w, c32(4)),
        arith::AddIOp::create(b, w, c32(4)), arith::AddIOp::create(b, w, c32(5)));
  }
  // The consumer warpgroup (`uniformWarpgroupIndex`: broadcast from lane 0,
  // as CUTLASS's canonical warp index). ptxas then knows it is warp-uniform
  // and computes what derives from it (the warpgroup's Q rows in the wgmma
  // descriptors, the ping-pong turns, cross-head tiles' K / V slot) in
  // uniform registers. From %tid.x every wgmma of S = Q K^T waits on an
  // R2UR of its Q descriptor; same-round A/Bs on the H200 (session 20, c3):
  // +0.5-5% on every row measured (1k: ALiBi, soft-cap, documents +4-5%).
  Value consumerGroup = arith::SubIOp::create(b, wg, lb.index(1));
  if (options.uniformWarpgroupIndex)
    consumerGroup = arith::IndexCastUIOp::create(b, b.getIndexType(),
                                                 ptx.broadcastFromLaneZero(toI32(consumerGroup)));
  Value r0 = arith::AddIOp::create(b, arith::MulIOp::create(b, consumerWarp, lb.index(16)), g);
  Value laneZero = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, lb.index(0));
  // Ping-pong (`pingPong`, attn-compile's default; FA3's warp
  // scheduler barriers): the consumer warpgroups take turns issuing their
  // products, so one group's softmax runs while another's wgmma occupy the
  // tensor cores. Group i waits on named barrier i + 1 (its turn) and, once
  // its products are issued, arrives on the next group's barrier (group
  // i + 1, the last group's on group 0's); each barrier counts 256 threads,
  // the waiting group's 128 and the arriving group's 128. The last group
  // lets group 0 go first; group 0 consumes the last group's last arrival
  // after the loop, so every barrier ends balanced whatever the tile count.
  // In a persistent block the turns run on across items (all groups visit
  // the same tiles): the last group lets group 0 go first once, before the
  // first item, and group 0 consumes the last arrival once, after the last.
  // Per item instead, a group could arrive for its next item before the
  // next group consumed its previous arrival, and two arrivals of one group
  // complete the barrier without the other (a hang at scale).
  constexpr int64_t kTurnThreads = 2 * 128;
  Value myTurn, otherTurn, isFirstGroup;
  auto letFirstGroupStart = [&] {
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, consumerGroup,
                                    lb.index(consumerGroups - 1)),
              [&] { ptx.namedBarrierArrive(c32(1), kTurnThreads); });
  };
  auto balanceTurns = [&] {
    lb.ifThen(isFirstGroup, [&] { ptx.namedBarrierSync(c32(1), kTurnThreads); });
  };
  if (pingPong) {
    Value group32 = toI32(consumerGroup);
    myTurn = arith::AddIOp::create(b, group32, c32(1));
    otherTurn = arith::AddIOp::create(
        b, arith::RemUIOp::create(b, myTurn, c32(consumerGroups)), c32(1));
    isFirstGroup = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, group32, c32(0));
  }
  if (pingPong && persistent)
    letFirstGroupStart();

  // This warpgroup's 64 rows of Q start 64 * 128 bytes into each Q box (of
  // the item's Q buffer: qItemOffset, set per item).
  Value qWarpgroupOffset =
      arith::MulIOp::create(b, toI32(consumerGroup), c32(kRowsPerWarpgroup * 128));
  Value qItemOffset = qWarpgroupOffset;
  // Cross-head tiles: this warpgroup's K / V slot in each stage (per item).
  // (Cross-head tiles always broadcast the group: from %tid.x, every wgmma
  // of the loop waited on an R2UR of its K or V descriptor, and dense D = 64
  // ran 5-6% slower at 4k and 16k; session 20's c1 and c2.)
  Value kvSlot;
  if (crossHead)
    itemGroup32 = options.uniformWarpgroupIndex ? toI32(consumerGroup).getResult()
                                                : ptx.broadcastFromLaneZero(toI32(consumerGroup));
  int64_t nTilesO = dv / 8;
  // One k tile: S = Q K^T, softmax, O += P V; element masks only when
  // `masked` (the tile is partial, or masks are known only per element).
  // Software pipeline across k tiles (FlashAttention-3's intra-warpgroup
  // overlap): iteration j issues S_j = Q K_j^T and then O += P_{j-1} V_{j-1},
  // waits for S_j only, and runs tile j's softmax while the tensor cores
  // still work on P_{j-1} V_{j-1}; O is rescaled once that product is done.
  // The last tile's P V runs after the loop.
  auto issueS = [&](Value stage, Value parity, bool half) {
    Value kStage = arith::MulIOp::create(b, stage, c32(kvSlots * kStageBytes));
    if (crossHead)
      kStage = arith::AddIOp::create(b, kStage, arith::MulIOp::create(b, kvSlot, c32(kStageBytes)));
    // Every operand is ready before the fence: ptxas otherwise inserts a
    // warpgroup.arrive before each wgmma whose registers were just written.
    SmallVector<std::pair<Value, Value>> descs;
    for (int64_t step = 0; step < d / 16; ++step) {
      int64_t inBox = (step * 16 % kBoxCols) * 2, box = step * 16 / kBoxCols;
      descs.push_back(
          {descriptor(arith::AddIOp::create(b, qItemOffset, c32(box * qBoxBytes + inBox)),
                      16),
           descriptor(arith::AddIOp::create(b, kStage, c32(kOffset + box * kvBoxBytes + inBox)),
                      16)});
    }
    // Half diagonal keys: N = 64, the first blockK / 4 accumulators.
    int64_t n = half ? blockK / 2 : blockK;
    SmallVector<Value> acc(n / 2, lb.f32(0.0));
    ptx.wait(stageBar(KFull, stage), parity);
    ptx.wgmmaFence(half ? "half keys" : "");
    // (Half diagonal keys, whose branches keep LLVM from hoisting the zero
    // accumulators' moves out of the loop: the first step overwrites them.)
    for (auto [i, descPair] : llvm::enumerate(descs))
      acc = ptx.wgmma(acc, descPair.first, {}, descPair.second, n, et, /*transposeB=*/false,
                      /*transposeA=*/false, /*accumulate=*/!(halfDiagonal && i == 0));
    ptx.wgmmaCommit();
    return acc;
  };
  // O += P V for the tile in `stage` (P as packed A-operand registers).
  auto issuePV = [&](ArrayRef<Value> o, ArrayRef<Value> pPacked, Value stage, Value parity,
                     bool half = false) {
    Value vStage = arith::MulIOp::create(b, stage, c32(kvSlots * vStageBytes));
    if (crossHead)
      vStage = arith::AddIOp::create(b, vStage, arith::MulIOp::create(b, kvSlot, c32(vStageBytes)));
    SmallVector<Value> descs;
    for (int64_t u = 0; u < blockK / 16; ++u)
      descs.push_back(
          descriptor(arith::AddIOp::create(b, vStage, c32(vOffset + u * 16 * 128)), kvBoxBytes));
    ptx.wait(stageBar(VFull, stage), parity);
    ptx.wgmmaFence(half ? "half keys" : "");
    // Half diagonal keys: the k steps of the first 64 keys.
    SmallVector<Value> acc(o.begin(), o.end());
    for (int64_t u = 0; u < (half ? blockK / 32 : blockK / 16); ++u)
      acc = ptx.wgmma(acc, Value(), pPacked.slice(4 * u, 4), descs[u], dv, et,
                      /*transposeB=*/true);
    ptx.wgmmaCommit();
    return acc;
  };
  // Tile j's softmax on its S accumulators: max[2], sum[2], alpha[2], then P
  // packed (blockK / 16 x 4 registers), then whether O needs a rescale (the
  // lazy rescale: only when a row's max grew past the headroom; with random
  // or trained inputs, almost only on a row's first tiles). Masks only when
  // `masked`.
  auto softmaxTile = [&](FragmentSoftmax &softmax, Value kt, ArrayRef<Value> acc,
                         const SoftmaxState &st, bool masked, Value idLaneSlot,
                         ArrayRef<Value> pastHalf = {}) {
    Value colBegin = arith::MulIOp::create(b, kt, lb.index(blockK));
    // Staged key ids: the lane's columns 8 j and 8 j + 1 are one
    // ld.shared.v2 at idLaneSlot + 32 j.
    std::map<int64_t, std::pair<Value, Value>> idPairs;
    std::function<Value(int64_t)> kvDocIdAt;
    if (idLaneSlot && masked)
      kvDocIdAt = [&](int64_t c) -> Value {
        auto &pair = idPairs[c / 8];
        if (!pair.first) {
          Value both = ptx.emit({i32, i32}, {arith::AddIOp::create(b, idLaneSlot, c32(c / 8 * 32))},
                                "ld.shared.v2.u32 {$0, $1}, [$2];", "=r,=r,r");
          pair = {LLVM::ExtractValueOp::create(b, both, 0), LLVM::ExtractValueOp::create(b, both, 1)};
        }
        return c % 2 ? pair.second : pair.first;
      };
    SmallVector<Value> sc = softmax.scores(acc, colBegin, lb.boolean(masked), kvDocIdAt);
    SmallVector<Value> p;
    SoftmaxState next = softmax.update(st, sc, p, options.lazyRescale, options.polyExp2Eighths);
    SmallVector<Value> results = {next.max[0], next.max[1], next.sum[0], next.sum[1],
                                  next.alpha[0], next.alpha[1]};
    for (int64_t u = 0; u < blockK / 16; ++u) {
      // A half-key tile's P past its 64 columns, never read by its P V:
      // `pastHalf`'s registers (the previous P), which need no moves at the
      // branch's end, unlike zeros (with the copies inside the loop, moves
      // there were one suspect of ptxas's C7513).
      if (8 * u >= int64_t(p.size())) {
        results.append(pastHalf.begin() + 4 * u, pastHalf.begin() + 4 * u + 4);
        continue;
      }
      std::array<Value, 4> regs = softmax.pOperand(p, u, /*asI32=*/true);
      results.append(regs.begin(), regs.end());
    }
    if (options.lazyRescale)
      results.push_back(next.rescale);
    return results;
  };
  // Tiles in the plan's full range skip the mask code entirely: a per-tile
  // branch between an unmasked and a masked copy of the softmax.
  bool alwaysMasked = plan.getElementMaskEverywhere() ||
                      (op.getQDocIds() && !classifyDocuments) || (layout && !skipEmptyTiles);
  int64_t pRegs = blockK / 16 * 4;
  // The softmax of an item's rows (this lane's two).
  auto softmaxOf = [&](const Item &item) {
    std::array<Value, 2> rows = {
        arith::AddIOp::create(b, item.rowBegin, r0),
        arith::AddIOp::create(b, item.rowBegin, arith::AddIOp::create(b, r0, lb.index(8)))};
    return FragmentSoftmax(kb, fb, emitter, op, item.batch, item.head, seqQ, seqK, rows, t2,
                           /*tileOffsetMasks=*/true, /*blockMaskPerTile=*/skipEmptyTiles);
  };
  Value lse = op.getLse() ? map.lookup(op.getLse()) : Value();
  // Item overlap (`itemOverlap`): an item's last P V is not issued after its
  // loop but carried, with its O and softmax state, into the next item,
  // whose first iteration issues it right behind its own S_0 = Q K_0^T (as
  // any P_{j-1} V_{j-1} behind S_j), waits for both and writes the finished
  // item's output before the softmax of tile 0. Before, every item drained
  // the pipeline: its last P V waited for alone, the epilogue, then S_0
  // waited for alone: two products' latency per item per warpgroup, one now.
  // (The output written after the softmax instead, with the P V in flight
  // through it, spilled more.) Carried over items besides the counts:
  // whether an item is pending, its O, P, stage and parity; its work index,
  // max[2] and sum[2] wait in shared memory (kPendingBytes per thread: in
  // registers, live through every softmax, they spilled the window and
  // ALiBi kernels). Measured 2-5% slower at D = 64 and spilling at D = 128
  // (64 O registers under the persistent consumers' 232): attn-compile
  // leaves it off unless asked (--item-overlap).
  int64_t pendingBegin = 2, pendingOBegin = pendingBegin + 1,
          pendingPBegin = pendingOBegin + nTilesO * 4;
  SmallVector<Value> itemInit = {c32(0), c32(0)};
  if (itemOverlap) {
    SoftmaxState empty = SoftmaxState::initial(lb, nTilesO * 4);
    itemInit.push_back(lb.boolean(false));
    itemInit.append(empty.o.begin(), empty.o.end());
    itemInit.append(pRegs, c32(0));
    itemInit.append({c32(0), c32(0)});
  }
  auto pendingSlot = [&](int64_t word) {
    Value thread = arith::SubIOp::create(b, toI32(tid), c32(128));
    return at(arith::AddIOp::create(
        b, arith::MulIOp::create(b, thread, c32(kPendingBytes)), c32(pendingOffset + 4 * word)));
  };
  auto parkPending = [&](Value work, ArrayRef<Value> maxSum) {
    ptx.emit({}, {pendingSlot(0), work}, "st.shared.u32 [$0], $1;", "r,r");
    for (int64_t i = 0; i < 4; ++i)
      ptx.emit({}, {pendingSlot(1 + i), maxSum[i]}, "st.shared.f32 [$0], $1;", "r,f");
  };
  // Writes out the pending item, whose finished O is `o`.
  auto finishPending = [&](ArrayRef<Value> o) {
    Value work = ptx.emit({i32}, {pendingSlot(0)}, "ld.shared.u32 $0, [$1];", "=r,r");
    SoftmaxState st;
    for (int r = 0; r < 2; ++r) {
      st.max[r] = ptx.emit({b.getF32Type()}, {pendingSlot(1 + r)}, "ld.shared.f32 $0, [$1];",
                           "=f,r");
      st.sum[r] = ptx.emit({b.getF32Type()}, {pendingSlot(3 + r)}, "ld.shared.f32 $0, [$1];",
                           "=f,r");
    }
    st.o.assign(o.begin(), o.end());
    softmaxOf(itemOf(work)).finalize(st, out, lse);
  };
  // Dynamic scheduler: wait for the next Q buffer and read its item index:
  // lane 0 alone reads it and broadcasts it to its warp, so the one lane
  // that releases the buffer (below) is the only reader (with every lane
  // reading and lane 0 releasing after bar.warp.sync, compute-sanitizer's
  // racecheck saw no order between the other lanes' reads and the
  // producer's next write; every lane releasing cost ~5% at causal 1k).
  auto consumerNextItem = [&](ValueRange carried) -> Value {
    auto [buffer, use] = qBufferOf(carried[0]);
    ptx.wait(qFullBar(buffer), arith::RemUIOp::create(b, use, c32(2)));
    return ptx.emit({i32},
                    {slotAddress(buffer), arith::IndexCastOp::create(b, i32, lane).getResult()},
                    "{ .reg .pred p; mov.u32 $0, 0; setp.eq.u32 p, $2, 0;\n"
                    "@p ld.shared.u32 $0, [$1];\n"
                    "shfl.sync.idx.b32 $0, $0, 0, 0x1f, 0xffffffff; }",
                    "=r,r,r");
  };
  SmallVector<Value> itemsOut = forEachItem(itemInit, [&](const Item &item, ValueRange items) {
  Value itemCount = items[0], firstCount = items[1];
  Value pendingValid = itemOverlap ? items[pendingBegin] : Value();
  FragmentSoftmax softmax = softmaxOf(item);
  KTileRange range = emitKTileRange(b, plan, item.tile, seqQ, seqK);
  auto [qBuffer, qUse] = qBufferOf(itemCount);
  if (!dynamic)
    ptx.wait(qFullBar(qBuffer), arith::RemUIOp::create(b, qUse, c32(2)));
  qItemOffset = arith::AddIOp::create(b, qWarpgroupOffset,
                                      arith::MulIOp::create(b, qBuffer, c32(qBytes)));
  if (crossHead)
    kvSlot = item.kvSlot;
  if (pingPong && !persistent)
    letFirstGroupStart();
  // Carried over k tiles: max[2], sum[2], O, P of the previous tile, its
  // stage and parity, and the number of tiles consumed so far (over items).
  SmallVector<Value> init = SoftmaxState::initial(lb, nTilesO * 4).flatten();
  if (itemOverlap) {
    // O, P, stage and parity of the pending item, if any.
    std::copy(items.begin() + pendingOBegin, items.begin() + pendingPBegin, init.begin() + 4);
    init.append(items.begin() + pendingPBegin, items.end());
    init.push_back(firstCount);
  } else {
    init.append(pRegs, c32(0));
    init.append({c32(0), c32(0), firstCount});
  }
  int64_t oBegin = 4, pBegin = 4 + nTilesO * 4, tail = pBegin + pRegs;
  // Tile kt on the carried state; with a tile list, `documentsFull` says
  // whether the tile's document test is all-true.
  auto consumeTileAs = [&](bool halfTile, Value kt, Value documentsFull, ValueRange carried) {
    Value count = carried[tail + 2];
    auto [stage, round] = stageOf(count);
    Value parity = arith::RemUIOp::create(b, round, c32(2));
    Value prevStage = carried[tail], prevParity = carried[tail + 1];
    // A P V to issue: the item's previous tile's, or (item overlap) the
    // pending item's last.
    Value hasPrev =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, count, firstCount).getResult();
    Value firstOfItem;
    if (itemOverlap) {
      firstOfItem = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, count, firstCount);
      hasPrev = arith::OrIOp::create(b, hasPrev, pendingValid);
    }
    SmallVector<Value> o(carried.begin() + oBegin, carried.begin() + pBegin);
    ValueRange prevP = carried.slice(pBegin, pRegs);

    if (pingPong)
      ptx.namedBarrierSync(myTurn, kTurnThreads);
    SmallVector<Value> acc = issueS(stage, parity, halfTile);
    // With a previous tile: issue its P V, then wait for S only
    // (wait_group 1: the older group); else wait for S alone.
    o = kb.ifWithResults(
        hasPrev, TypeRange(ValueRange(o).getTypes()),
        [&] {
          SmallVector<Value> inFlight =
              issuePV(o, SmallVector<Value>(prevP), prevStage, prevParity);
          if (pingPong)
            ptx.namedBarrierArrive(otherTurn, kTurnThreads);
          if (!itemOverlap) {
            ptx.wgmmaWait(1);
            return inFlight;
          }
          // The first tile of an item: the product is the pending item's
          // last; write that item out and start this one's O at zero.
          return kb.ifWithResults(
              firstOfItem, TypeRange(ValueRange(o).getTypes()),
              [&] {
                ptx.wgmmaWait(0);
                finishPending(ptx.fenceOperands(inFlight));
                return SmallVector<Value>(o.size(), lb.f32(0.0));
              },
              [&] {
                ptx.wgmmaWait(1);
                return inFlight;
              });
        },
        [&] {
          if (pingPong)
            ptx.namedBarrierArrive(otherTurn, kTurnThreads);
          ptx.wgmmaWait(0);
          return o;
        });
    acc = ptx.fenceOperands(acc);
    // Staged key ids: every lane's reads of earlier tiles' ids before lane 0
    // releases this stage (see stagedDocIds).
    if (stagedDocIds)
      ptx.namedBarrierSync(consumerIdBarrier, 32);
    lb.ifThen(laneZero, [&] { ptx.arrive(stageBar(KEmpty, stage)); });

    SoftmaxState st;
    for (int r = 0; r < 2; ++r) {
      st.max[r] = carried[r];
      st.sum[r] = carried[2 + r];
    }
    SmallVector<Type> smTypes(6, b.getF32Type());
    smTypes.append(pRegs, i32);
    if (options.lazyRescale)
      smTypes.push_back(b.getI1Type());
    SmallVector<Value> sm;
    Value idLaneSlot =
        stagedDocIds ? (Value)arith::AddIOp::create(b, idSlot(count),
                                                    toI32(arith::MulIOp::create(b, t2, lb.index(4))))
                     : Value();
    auto wholeTile = [&]() -> SmallVector<Value> {
      if (alwaysMasked)
        return softmaxTile(softmax, kt, acc, st, /*masked=*/true, idLaneSlot);
      Value partial = arith::OrIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, range.fullBegin),
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, kt, range.fullEnd));
      if (classifyDocuments)
        partial = arith::OrIOp::create(
            b, partial, arith::XOrIOp::create(b, documentsFull, lb.boolean(true)));
      return kb.ifWithResults(
          partial, smTypes, [&] { return softmaxTile(softmax, kt, acc, st, true, idLaneSlot); },
          [&] { return softmaxTile(softmax, kt, acc, st, false, idLaneSlot); });
    };
    // Half diagonal keys: the softmax of the first 64 columns (masked: the
    // diagonal runs through them).
    sm = halfTile ? softmaxTile(softmax, kt, acc, st, /*masked=*/true, idLaneSlot,
                                  SmallVector<Value>(prevP))
                  : wholeTile();
    // The previous P V is done: release its V stage, rescale O.
    ptx.wgmmaWait(0);
    o = ptx.fenceOperands(o);
    lb.ifThen(arith::AndIOp::create(b, laneZero, hasPrev),
              [&] { ptx.arrive(stageBar(VEmpty, prevStage)); });
    SmallVector<Value> next = {sm[0], sm[1], sm[2], sm[3]};
    auto rescaled = [&] {
      SmallVector<Value> scaled;
      for (int64_t i = 0; i < int64_t(o.size()); ++i)
        scaled.push_back(arith::MulFOp::create(b, o[i], sm[4 + (i % 4) / 2]));
      return scaled;
    };
    // (Skipping it on an item's first tile, whose O is still zero but whose
    // max always grows from -inf, measured no faster on the H200 and causal
    // D = 128 1.5-2% slower: session 21, c1 against c2.)
    o = options.lazyRescale
            ? kb.ifWithResults(sm.back(), TypeRange(ValueRange(o).getTypes()),
                               rescaled, [&] { return o; })
            : rescaled();
    next.append(o.begin(), o.end());
    next.append(sm.begin() + 6, sm.begin() + 6 + pRegs);
    next.append({stage, parity, arith::AddIOp::create(b, count, c32(1))});
    return next;
  };
  auto consumeTile = [&](Value kt, Value documentsFull, ValueRange carried) {
    return consumeTileAs(false, kt, documentsFull, carried);
  };
  SmallVector<Value> carriedOut;
  Value nextCount; // the first tile count of the next item
  // Half diagonal keys: whether the item's last tile is a half one for this
  // warpgroup, which then runs after the loop (peeled). (A branch between a
  // half and a whole copy inside the loop made ptxas keep the loop's stage
  // and descriptors in per-thread registers and serialize every wgmma of
  // the kernel: C7513.)
  // It is one when the item has tiles and this warpgroup's last row sees no
  // key of the last tile's second half.
  Value halfLast;
  if (halfDiagonal && !tileList) {
    Value lastRow = arith::AddIOp::create(
        b, item.rowBegin,
        arith::AddIOp::create(b, arith::MulIOp::create(b, consumerGroup, lb.index(kRowsPerWarpgroup)),
                              lb.index(kRowsPerWarpgroup - 1)));
    Value lastTile = arith::SubIOp::create(b, range.end, lb.index(1));
    Value secondHalf = arith::AddIOp::create(
        b, arith::MulIOp::create(b, lastTile, lb.index(blockK)), lb.index(blockK / 2));
    halfLast = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, range.end, range.begin),
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                              emitter.visibleInterval(lastRow).second, secondHalf));
  }
  if (!tileList) {
    Value loopEnd = halfLast ? (Value)arith::SelectOp::create(
                                   b, halfLast, arith::SubIOp::create(b, range.end, lb.index(1)),
                                   range.end)
                             : range.end;
    carriedOut = kb.forWithState(range.begin, loopEnd, lb.index(1), init,
                                 [&](Value kt, ValueRange carried) {
                                   return consumeTile(kt, Value(), carried);
                                 });
    if (halfLast) {
      // The peeled half tile. Only the softmax state, O and P pass the
      // branch; its stage, parity and count follow from the loop's count
      // (selects, not joins, which would cost their uniformity).
      SmallVector<Value> data(carriedOut.begin(), carriedOut.begin() + tail);
      SmallVector<Value> peeled = kb.ifWithResults(
          halfLast, TypeRange(ValueRange(data).getTypes()),
          [&] {
            SmallVector<Value> next = consumeTileAs(
                true, arith::SubIOp::create(b, range.end, lb.index(1)), Value(), carriedOut);
            return SmallVector<Value>(next.begin(), next.begin() + tail);
          },
          [&] { return data; });
      Value count = carriedOut[tail + 2];
      auto [stage, round] = stageOf(count);
      Value parity = arith::RemUIOp::create(b, round, c32(2));
      peeled.push_back(arith::SelectOp::create(b, halfLast, stage, carriedOut[tail]));
      peeled.push_back(arith::SelectOp::create(b, halfLast, parity, carriedOut[tail + 1]));
      peeled.push_back(arith::SelectOp::create(
          b, halfLast, arith::AddIOp::create(b, count, c32(1)), count));
      carriedOut = peeled;
    }
    nextCount = carriedOut[tail + 2];
  } else {
    // Follow the producer's words: after a tile not marked last, wait for
    // the next stage and read its word; -1 (an item without live tiles) ends
    // the item too. Carried besides the state: whether a word is due.
    SmallVector<Value> withDue(init);
    withDue.push_back(lb.boolean(true));
    SmallVector<Type> passedTypes(ValueRange(init).getTypes());
    passedTypes.push_back(i32);
    SmallVector<Value> passed = kb.whileWithState(
        withDue, passedTypes,
        [&](ValueRange carried) {
          Value word = kb.ifWithResults(
              carried.back(), {i32},
              [&] {
                auto [stage, round] = stageOf(carried[tail + 2]);
                ptx.wait(stageBar(KFull, stage), arith::RemUIOp::create(b, round, c32(2)));
                return SmallVector<Value>{ptx.emit({i32}, {wordAddress(stage)},
                                                   "ld.shared.u32 $0, [$1];", "=r,r")};
              },
              [&] { return SmallVector<Value>{c32(-2)}; })[0];
          SmallVector<Value> next(carried.drop_back());
          next.push_back(word);
          return std::make_pair(
              arith::CmpIOp::create(b, arith::CmpIPredicate::sge, word, c32(0)).getResult(),
              next);
        },
        [&](ValueRange passed) {
          Value word = passed.back();
          Value kt = arith::IndexCastOp::create(
              b, b.getIndexType(), arith::ShRUIOp::create(b, word, c32(kWordShift)));
          auto flag = [&](int64_t bit) {
            return arith::CmpIOp::create(
                b, arith::CmpIPredicate::ne,
                arith::AndIOp::create(b, word, c32(int64_t(1) << bit)), c32(0));
          };
          SmallVector<Value> next = consumeTile(kt, flag(kFullBit), passed.drop_back());
          next.push_back(arith::XOrIOp::create(b, flag(kLastBit), lb.boolean(true)));
          return next;
        });
    carriedOut.assign(passed.begin(), passed.end() - 1);
    // An end word's stage: a persistent producer refills it for a later
    // item, so release it like a tile's.
    Value endCount = carriedOut[tail + 2];
    Value endWord = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, passed.back(), c32(-1));
    if (persistent) {
      Value endStage = stageOf(endCount).first;
      lb.ifThen(arith::AndIOp::create(b, laneZero, endWord), [&] {
        ptx.arrive(stageBar(KEmpty, endStage));
        ptx.arrive(stageBar(VEmpty, endStage));
      });
    }
    nextCount = arith::AddIOp::create(b, endCount, arith::ExtUIOp::create(b, i32, endWord));
  }
  // Every S = Q K^T of the item is done: the producer may refill Q.
  // (Dynamic scheduler: lane 0 is the one lane that read the buffer's item
  // index, which the producer rewrites once the buffer is released.) With
  // O staged in the Q buffer, only after the item's output is written.
  auto releaseQ = [&] {
    lb.ifThen(laneZero, [&] { ptx.arrive(qEmptyBar(qBuffer)); });
  };
  if (persistent && !stageOutput)
    releaseQ();
  if (pingPong && !persistent)
    balanceTurns();
  Value anyTile = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, carriedOut[tail + 2],
                                        firstCount);
  if (itemOverlap) {
    // An item with tiles becomes the pending one (its last P V not issued);
    // one without is written out now (empty rows) and the pending item, if
    // any, stays pending (the loop passed its O, P, stage and parity on).
    SmallVector<Value> next = {arith::AddIOp::create(b, itemCount, c32(1)), nextCount,
                               arith::OrIOp::create(b, pendingValid, anyTile)};
    next.append(carriedOut.begin() + oBegin, carriedOut.begin() + tail + 2);
    lb.ifThen(
        anyTile,
        [&] {
          parkPending(item.work, {carriedOut[0], carriedOut[1], carriedOut[2], carriedOut[3]});
        },
        [&] { softmax.finalize(SoftmaxState::initial(lb, nTilesO * 4), out, lse); });
    return next;
  }
  // The last tile's P V.
  SmallVector<Value> oFinal(carriedOut.begin() + oBegin, carriedOut.begin() + pBegin);
  oFinal = kb.ifWithResults(
      anyTile, TypeRange(ValueRange(oFinal).getTypes()),
      [&] {
        auto lastPV = [&](bool half) {
          SmallVector<Value> o =
              issuePV(oFinal, SmallVector<Value>(carriedOut.begin() + pBegin,
                                                 carriedOut.begin() + tail),
                      carriedOut[tail], carriedOut[tail + 1], half);
          ptx.wgmmaWait(0);
          return ptx.fenceOperands(o);
        };
        // (Half diagonal keys: the wait in each copy, as in consumeTile.)
        SmallVector<Value> o =
            halfLast
                ? kb.ifWithResults(halfLast,
                                   TypeRange(ValueRange(oFinal).getTypes()),
                                   [&] { return lastPV(true); }, [&] { return lastPV(false); })
                : lastPV(false);
        // A persistent block's producer refills this V stage for a later
        // item: release it (a one-item block ends here instead).
        if (persistent)
          lb.ifThen(laneZero, [&] { ptx.arrive(stageBar(VEmpty, carriedOut[tail])); });
        return o;
      },
      [&] { return oFinal; });
  SmallVector<Value> state = {carriedOut[0], carriedOut[1], carriedOut[2], carriedOut[3]};
  state.append(oFinal.begin(), oFinal.end());
  // With the item order, the item again from its index for the epilogue: its
  // ranked q tile, a shared-memory load, is not kept live through the loop.
  auto epilogueSoftmax = [&] { return itemOrder ? softmaxOf(itemOf(item.work)) : softmax; };
  if (stageOutput) {
    // This warp's rows of the item's Q buffer (16 rows x 128 bytes a box).
    // (The warp from %tid.x here: see storeStaged's %laneid.)
    Value warp32 = arith::DivUIOp::create(
        b, ptx.emit({i32}, {}, "mov.u32 $0, %tid.x;", "=r"), c32(32));
    OutputStaging staging{
        at(arith::AddIOp::create(
            b, arith::MulIOp::create(b, qBuffer, c32(qBytes)),
            arith::MulIOp::create(b, arith::SubIOp::create(b, warp32, c32(4)), c32(16 * 128)))),
        qBoxBytes};
    // The producer's next TMA into this buffer is an async-proxy write after
    // this warp's generic-proxy reads and writes of it.
    auto handBack = [&] {
      ptx.fenceProxyAsync();
      ptx.warpSync();
      releaseQ();
    };
    // Early release: the buffer goes back once the warp has read its rows,
    // before the global stores (whose drain the fence would otherwise wait
    // for); the stores follow from registers.
    staging.readsFirst = options.earlyOutputRelease;
    if (options.earlyOutputRelease && persistent)
      staging.afterReads = handBack;
    epilogueSoftmax().finalize(SoftmaxState::unflatten(state), out, lse, &staging);
    if (persistent && !options.earlyOutputRelease)
      handBack();
  } else {
    epilogueSoftmax().finalize(SoftmaxState::unflatten(state), out, lse);
  }
  return SmallVector<Value>{arith::AddIOp::create(b, itemCount, c32(1)), nextCount};
  }, dynamic ? std::function<Value(ValueRange)>(consumerNextItem) : nullptr);
  if (itemOverlap) {
    // The block's last item with tiles: its last P V, then its output.
    ValueRange pending = ValueRange(itemsOut).drop_front(pendingBegin);
    lb.ifThen(pending[0], [&] {
      ValueRange pendingP = ValueRange(itemsOut).slice(pendingPBegin, pRegs);
      Value stage = itemsOut[pendingPBegin + pRegs], parity = itemsOut[pendingPBegin + pRegs + 1];
      SmallVector<Value> o = issuePV(
          SmallVector<Value>(itemsOut.begin() + pendingOBegin, itemsOut.begin() + pendingPBegin),
          SmallVector<Value>(pendingP), stage, parity);
      ptx.wgmmaWait(0);
      o = ptx.fenceOperands(o);
      finishPending(o);
    });
  }
  if (pingPong && persistent)
    balanceTurns();
  b.setInsertionPointAfter(roles);
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
