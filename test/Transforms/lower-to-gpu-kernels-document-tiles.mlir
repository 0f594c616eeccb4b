// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF

// Document tiles classified at run time: in each role, every warp reduces the
// q tile's document ids (4 per lane, then xor shuffles); the producer's whole
// warp 0 runs its loop (lane 0 issues) and, like each consumer warp, classifies
// 32 k tiles at a time: lane i takes the min / max of tile kt + i's ids (a loop
// of 4 or 16 loads at a time) and two ballots pack the visited and
// single-document bits. The consumers skip disjoint tiles and take the
// unmasked softmax for single-document tiles. The producer holds 40
// registers for this (the consumers 232).
// CHECK-LABEL: gpu.func @document
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: gpu.shuffle  xor
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-4: memref.load %{{.*}} : memref<?x?xi32>
// CHECK-NOT: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: nvvm.vote.sync  ballot
// CHECK: nvvm.vote.sync  ballot
// CHECK: cp.async.bulk.tensor.4d
// CHECK: setmaxnreg.inc.sync.aligned.u32 232
// CHECK: gpu.shuffle  xor
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: nvvm.vote.sync  ballot
// CHECK: nvvm.vote.sync  ballot
// CHECK: scf.if
// CHECK: wgmma.mma_async

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
