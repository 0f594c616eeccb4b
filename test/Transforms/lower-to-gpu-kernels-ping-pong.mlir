// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF

// Ping-pong: consumer group 1 first arrives on named barrier 1 (group 0 goes
// first); every iteration waits for its turn (bar.sync 1 + group), issues S
// and the previous P V, then hands the turn over (bar.arrive 2 - group) on
// either branch; after the loop group 0 consumes group 1's last arrival.
// CHECK-LABEL: gpu.func @dense
// CHECK: setmaxnreg.inc.sync.aligned.u32 240
// CHECK: "bar.arrive $0, 256;"
// CHECK: scf.for
// CHECK: "bar.sync $0, 256;"
// CHECK: wgmma.mma_async
// CHECK: scf.if
// CHECK: wgmma.commit_group.sync.aligned
// CHECK: "bar.arrive $0, 256;"
// CHECK: wgmma.wait_group.sync.aligned 1
// CHECK: } else {
// CHECK: "bar.arrive $0, 256;"
// CHECK: wgmma.wait_group.sync.aligned 0
// CHECK: scf.yield
// CHECK: "bar.sync $0, 256;"

// OFF-LABEL: gpu.func @dense
// OFF-NOT: bar.sync
// OFF-NOT: bar.arrive
// OFF: gpu.return
func.func @dense(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                 %v: memref<?x4x?x128xbf16>, %o: memref<?x4x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>)
      outs(%o : memref<?x4x?x128xbf16>)
  return
}
