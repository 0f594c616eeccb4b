// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF

// Document tiles classified at run time: in each role, every warp reduces the
// q tile's document ids to [lo, hi] (4 per lane, then xor shuffles); the
// producer's whole warp 0 runs its loop (lane 0 issues); per k tile, each lane
// tests its 4 key ids against [lo, hi] and two warp votes decide the tile
// (any id inside: live; every id the q tile's single id: full) — no shuffles
// inside the loops; the consumers skip dead tiles and take the unmasked softmax
// for single-document tiles.
// CHECK-LABEL: gpu.func @document
// CHECK: setmaxnreg.dec.sync.aligned.u32 24
// CHECK: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: gpu.shuffle  xor
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: scf.for
// CHECK-NOT: gpu.shuffle
// CHECK: nvvm.vote.sync  any
// CHECK: nvvm.vote.sync  all
// CHECK: cp.async.bulk.tensor.4d
// CHECK: setmaxnreg.inc.sync.aligned.u32 240
// CHECK: gpu.shuffle  xor
// CHECK: scf.for
// CHECK-NOT: gpu.shuffle
// CHECK: nvvm.vote.sync  any
// CHECK: nvvm.vote.sync  all
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
