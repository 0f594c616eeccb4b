// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF

// Document tiles classified at run time, by the producer only. Each of its
// four warps reduces the q tile's document ids to [lo, hi] (4 per lane, then
// xor shuffles), then the warpgroup walks the causal k tiles in key order, 16
// per round: each warp takes 4 (16 id loads per lane in flight, then per tile
// two warp votes: any id inside: live; every id the q tile's single id:
// full), posts its bits to shared memory, and after a named barrier over the
// 128 producer threads every warp reads all four. Thread 0 loads the live
// tiles and writes each one's word (kt << 2 | full << 1 | last) next to its
// stage; an item without live tiles gets -1. The producer keeps 40 registers
// for the loads in flight. The consumers follow the words (a while loop on
// the stage's word): no document reduction, no votes on document ids, no
// dead tiles.
// CHECK-LABEL: gpu.func @document
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: gpu.shuffle  xor
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: scf.for {{.*}} step %c16
// CHECK-NOT: gpu.shuffle
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi32>
// CHECK-COUNT-4: nvvm.vote.sync  all
// CHECK: st.shared.u32
// CHECK: st.shared.u32
// CHECK: bar.sync $0, 128;", "r" %c8_i32
// CHECK-COUNT-8: ld.shared.u32
// CHECK: scf.for
// CHECK: st.shared.u32
// CHECK: cp.async.bulk.tensor.4d
// CHECK: st.shared.u32 [$0], $1;", "r,r" %{{.*}}, %c-1_i32
// CHECK: setmaxnreg.inc.sync.aligned.u32 232
// CHECK-NOT: gpu.shuffle
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: scf.while
// CHECK: mbarrier.try_wait.parity
// CHECK: ld.shared.u32
// CHECK: scf.condition
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: wgmma.mma_async
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: gpu.return

// Off by default: no reduction of document ids.
// OFF-LABEL: gpu.func @document
// OFF-NOT: gpu.shuffle  xor {{.*}} : i32
// OFF: gpu.return
func.func @document(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                    %v: memref<?x16x?x128xbf16>, %qd: memref<?x?xi32>, %kd: memref<?x?xi32>,
                    %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>)
      q_doc_ids(%qd : memref<?x?xi32>) kv_doc_ids(%kd : memref<?x?xi32>)
      outs(%o : memref<?x16x?x128xbf16>) {causal}
  return
}
