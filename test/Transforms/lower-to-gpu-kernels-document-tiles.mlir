// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF

// Document tiles classified at run time, by the producer only: its whole warp
// 0 reduces the q tile's document ids to [lo, hi] (4 per lane, then xor
// shuffles), then walks the causal k tiles in key order in batches
// of 4: 16 id loads per lane, then per tile two warp votes (any id inside:
// live; every id the q tile's single id: full); lane 0 loads the live tiles
// and writes each one's word (kt << 1 | full) next to its stage, and -1 after
// the last. The producer keeps 40 registers for the loads in flight.
// The consumers follow the words (a while loop on the stage's word): no
// document reduction, no votes on document ids, no dead tiles.
// CHECK-LABEL: gpu.func @document
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: gpu.shuffle  xor
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: scf.for {{.*}} step %c4
// CHECK-NOT: gpu.shuffle
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: nvvm.vote.sync  any
// CHECK: nvvm.vote.sync  all
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
