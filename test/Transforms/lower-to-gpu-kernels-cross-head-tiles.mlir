// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 cross-head-tiles=1 staged-output-store=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 staged-output-store=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 cross-head-tiles=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 cross-head-tiles=1" | FileCheck %s --check-prefix=CAUSAL
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 dynamic-scheduler=1 cross-head-tiles=1" | FileCheck %s --check-prefix=DYN

// Cross-head tiles (persistent blocks): the query rows of every (batch, head)
// pair run as one sequence of 64-row slices, at least consumer groups - 1 a
// pair (ceildiv(Sq, 64), maxui 2 with three groups), and an item is the next
// three slices (ceildiv by 3 for the item count, the static loop's bound),
// in slice order. Q's tensor map has a box of
// 64 rows, and the producer loads each warpgroup's slice from its own pair:
// three loads after Q's arrive.expect_tx of all 192 rows (24576 bytes at
// D = 64). Each K / V stage has two slots (65536 bytes more shared memory
// than the 114784 without): where the item's last slice reads another
// (batch, KV head) than its first, the producer expects slot 1's bytes and
// starts its load before the arrive.expect_tx of slot 0's, so that the phase
// cannot complete with one slot landed.
// CHECK-LABEL: gpu.func @dense
// CHECK-SAME: attn.cross_head_tiles
// CHECK-SAME: attn.dynamic_shared_memory = 180320 : i64
// CHECK-SAME: attn.persistent
// CHECK-SAME: attn.tensor_maps = [{argument = 0 : i64, box_cols = 64 : i64, box_rows = 64 : i64
// CHECK: arith.ceildivui %{{.*}}, %c64 : index
// CHECK: arith.maxui %{{.*}}, %c2_i32 : i32
// CHECK: %[[ITEMS:.*]] = arith.ceildivui %{{.*}}, %c3_i32 : i32
// CHECK: setmaxnreg.dec.sync.aligned.u32 32
// CHECK: arith.index_castui %[[ITEMS]] : i32 to index
// CHECK: scf.for %{{.*}} = %block_id_x to %{{.*}} step %grid_dim_x
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %{{.*}}, %c24576_i32
// CHECK-COUNT-3: cp.async.bulk.tensor.4d
// CHECK: mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c16384_i32
// CHECK: cp.async.bulk.tensor.4d
// CHECK: mbarrier.arrive.expect_tx
// CHECK: cp.async.bulk.tensor.4d
// CHECK: mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c16384_i32
// CHECK: cp.async.bulk.tensor.4d
// CHECK: mbarrier.arrive.expect_tx
// CHECK: cp.async.bulk.tensor.4d
// CHECK: setmaxnreg.inc.sync.aligned.u32 160
// CHECK: gpu.return

// OFF-LABEL: gpu.func @dense
// OFF-NOT: attn.cross_head_tiles
// OFF-NOT: box_rows = 64
// OFF: gpu.return

// Causal masks give each q tile its own k range: the option is ignored
// (one slot, 128-row Q boxes), and so at D = 128, where two slots do not
// fit the shared memory.
// CAUSAL-LABEL: gpu.func @dense
// CAUSAL-SAME: attn.cross_head_tiles
// CAUSAL-LABEL: gpu.func @causal
// CAUSAL-NOT: attn.cross_head_tiles
// CAUSAL-LABEL: gpu.func @dense128
// CAUSAL-NOT: attn.cross_head_tiles
// CAUSAL-SAME: attn.dynamic_shared_memory = 196704 : i64
// CAUSAL: gpu.return

// The dynamic scheduler's counter ends at the cross-head item count.
// DYN-LABEL: gpu.func @dense
// DYN-SAME: attn.cross_head_tiles
// DYN-SAME: attn.tile_counter
// DYN: arith.ceildivui %{{.*}}, %c2_i32 : i32
// DYN: atom.global.add.u32
// DYN: gpu.return
func.func @dense(%q: memref<?x8x?x64xbf16>, %k: memref<?x2x?x64xbf16>,
                 %v: memref<?x2x?x64xbf16>, %o: memref<?x8x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xbf16>, memref<?x2x?x64xbf16>, memref<?x2x?x64xbf16>) outs(%o : memref<?x8x?x64xbf16>)
  return
}

func.func @causal(%q: memref<?x8x?x64xbf16>, %k: memref<?x8x?x64xbf16>,
                  %v: memref<?x8x?x64xbf16>, %o: memref<?x8x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) outs(%o : memref<?x8x?x64xbf16>) {causal}
  return
}

func.func @dense128(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                    %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%o : memref<?x16x?x128xbf16>)
  return
}
