// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1 item-overlap=1" | FileCheck %s --check-prefix=OVL
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 item-overlap=1" | FileCheck %s --check-prefix=OFF

// Persistent Hopper kernel: marked attn.persistent (the manifest then asks
// for one block per SM); Q double-buffered (item n in buffer n % 2: 32 KB
// more shared memory) with a q-empty mbarrier per buffer and buffer 1's
// q-full (24 bytes more); the producer (40 registers: it walks the work items too) and the consumers
// (232) each loop over items x = blockIdx.x, + gridDim.x, ...; the producer
// waits for a Q buffer to be released before refilling it, and the consumers
// release it (one lane per warp) after an item's last S = Q K^T, and release
// the V stage of the item's last P V. The ping-pong turns run on across
// items: group 1's first arrival (bar.arrive) comes before the item loop and
// group 0's balancing bar.sync after it.
// CHECK-LABEL: gpu.func @causal
// CHECK-SAME: attn.dynamic_shared_memory = 196704 : i64
// CHECK-SAME: attn.persistent
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: %[[GRID:.*]] = gpu.grid_dim x
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[GRID]] iter_args
// CHECK: mbarrier.try_wait.parity
// CHECK: cp.async.bulk.tensor.4d
// CHECK: scf.for
// CHECK: setmaxnreg.inc.sync.aligned.u32 232
// CHECK: bar.arrive
// CHECK: %[[GRID2:.*]] = gpu.grid_dim x
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[GRID2]] iter_args
// CHECK: mbarrier.try_wait.parity
// CHECK: scf.for
// CHECK: wgmma.mma_async
// CHECK: scf.yield
// CHECK: mbarrier.arrive.shared::cta.b64
// CHECK: wgmma.mma_async
// CHECK: wgmma.wait_group.sync.aligned 0
// CHECK: mbarrier.arrive.shared::cta.b64
// CHECK: scf.yield
// CHECK: bar.sync
// CHECK: gpu.return

// Item overlap: the consumers' item loop carries whether an item is pending
// (i1) with its O and P; each consumer thread parks the pending item's work
// index, max[2] and sum[2] in shared memory (256 x 20 bytes more). In the
// tile loop, the P V issued with an item's first S is the pending item's
// last: wait for both (wait_group 0), read the parked state back, write that
// item's output; otherwise wait for S only (wait_group 1). After the tile
// loop no P V: the item's state is parked; after the item loop the last
// pending item's P V and output.
// OVL-LABEL: gpu.func @causal
// OVL-SAME: attn.dynamic_shared_memory = 201824 : i64
// OVL: setmaxnreg.inc.sync.aligned.u32 232
// OVL: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %false,
// OVL: scf.for
// OVL: wgmma.mma_async
// OVL: bar.arrive
// OVL: wgmma.wait_group.sync.aligned 0
// OVL: ld.shared.u32
// OVL-COUNT-4: ld.shared.f32
// OVL: vector.store
// OVL: wgmma.wait_group.sync.aligned 1
// OVL: scf.yield
// OVL-NOT: wgmma.mma_async
// OVL: st.shared.u32
// OVL-COUNT-4: st.shared.f32
// OVL: scf.yield
// OVL: scf.if
// OVL: wgmma.mma_async
// OVL: wgmma.wait_group.sync.aligned 0
// OVL: ld.shared.u32
// OVL: vector.store
// OVL: gpu.return

// Off by default: one item per block, no q-empty barrier (item-overlap
// needs persistent blocks: without them it changes nothing).
// OFF-LABEL: gpu.func @causal
// OFF-SAME: attn.dynamic_shared_memory = 163912 : i64
// OFF-NOT: attn.persistent
// OFF: setmaxnreg.dec.sync.aligned.u32 24
// OFF-NOT: gpu.grid_dim x{{.*}}iter_args
func.func @causal(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                  %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%o : memref<?x16x?x128xbf16>) {causal}
  return
}
