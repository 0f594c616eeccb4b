// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 staged-output-store=1 early-output-release=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 staged-output-store=1" | FileCheck %s --check-prefix=DEFAULT
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 staged-output-store=1 early-output-release=1" | FileCheck %s --check-prefix=GRID

// Early output release (experimental): each consumer warp reads its 16 staged
// rows of O back from the item's Q buffer (8 x 16 bytes a lane at Dv = 128),
// then a persistent block hands the buffer back to the producer (the async-proxy
// fence, a warp barrier, lane 0's arrive on the buffer's empty barrier), and only
// then come the 8 guarded global stores. The fence is every lane's, and the
// warp barrier after it precedes lane 0's arrive: the producer's TMA into the
// buffer follows all 32 lanes' reads. By default each read is followed by its
// store and the hand-back comes after the last store.
// CHECK-LABEL: gpu.func @dense
// CHECK-COUNT-8: ld.shared.v4.b32
// CHECK-NOT: vector.store
// CHECK: fence.proxy.async.shared::cta
// CHECK-NEXT: bar.warp.sync -1
// CHECK-NEXT: scf.if
// CHECK-NOT: vector.store
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK-NEXT: }
// CHECK-COUNT-8: vector.store

// DEFAULT-LABEL: gpu.func @dense
// DEFAULT: ld.shared.v4.b32
// DEFAULT-NEXT: llvm.extractvalue
// DEFAULT-COUNT-8: vector.store
// DEFAULT: fence.proxy.async.shared::cta
// DEFAULT: mbarrier.arrive.shared::cta.b64

// One item per block: the reads first as well, no hand-back.
// GRID-LABEL: gpu.func @dense
// GRID-COUNT-8: ld.shared.v4.b32
// GRID-NOT: fence.proxy.async
// GRID-COUNT-8: vector.store
func.func @dense(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                 %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>,
                     memref<?x16x?x128xbf16>) outs(%o : memref<?x16x?x128xbf16>)
  return
}
