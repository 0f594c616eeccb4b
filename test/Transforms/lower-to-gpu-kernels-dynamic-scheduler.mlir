// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1 dynamic-scheduler=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1" | FileCheck %s --check-prefix=STATIC
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 dynamic-scheduler=1" | FileCheck %s --check-prefix=STATIC

// The dynamic tile scheduler (persistent blocks only): the kernel takes one
// more argument, the tile counter (memref<1xi32>, after the host's, before
// the three tensor maps), and is marked attn.tile_counter; two i32 item
// slots (one per Q buffer) follow the barriers: 8 bytes more shared memory.
// The producer's item loop is an scf.while: wait for the Q buffer to be
// free, take the next index with atom.global.add.u32, write it to the
// buffer's slot, and for an index past the end arrive on the buffer's q-full
// barrier without a load (the end marker); otherwise the item's Q load
// (arrive.expect_tx, after the slot's store) and its K / V tiles. The
// consumers' loop waits on q-full, lane 0 of each warp reads the slot and
// broadcasts it (shfl.sync.idx) and ends on an index past the end; that lane
// alone releases the Q buffer. Without persistent blocks the option is
// ignored.
// CHECK-LABEL: gpu.func @causal
// CHECK-SAME: %{{.*}}: memref<?x16x?x128xbf16>, %{{.*}}: memref<1xi32>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK-SAME: attn.dynamic_shared_memory = 196712 : i64
// CHECK-SAME: attn.persistent
// CHECK-SAME: attn.tile_counter
// CHECK-NOT: gpu.grid_dim
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: scf.while
// CHECK: mbarrier.try_wait.parity
// CHECK: atom.global.add.u32
// CHECK: st.shared.u32
// CHECK: scf.if
// CHECK: mbarrier.arrive.shared::cta.b64
// CHECK: scf.condition
// CHECK: mbarrier.arrive.expect_tx
// CHECK: cp.async.bulk.tensor
// CHECK: setmaxnreg.inc.sync.aligned.u32 232
// CHECK: scf.while
// CHECK: mbarrier.try_wait.parity
// CHECK: setp.eq.u32 p, $2, 0;\0A@p ld.shared.u32 $0, [$1];\0Ashfl.sync.idx.b32 $0, $0, 0, 0x1f, 0xffffffff; }
// CHECK: scf.condition
// CHECK-NOT: bar.warp.sync -1
// CHECK: scf.if
// CHECK: mbarrier.arrive.shared::cta.b64
// CHECK-NOT: atom.global
// CHECK: gpu.return

// STATIC-LABEL: gpu.func @causal
// STATIC-NOT: memref<1xi32>
// STATIC-NOT: attn.tile_counter
// STATIC-NOT: atom.global
// STATIC-NOT: scf.while
// STATIC: gpu.return
func.func @causal(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                  %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%o : memref<?x16x?x128xbf16>) {causal}
  return
}
