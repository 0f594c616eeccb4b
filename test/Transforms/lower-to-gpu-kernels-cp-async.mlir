// RUN: attn-opt %s --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels="tensor-cores=1 cp-async=1" | FileCheck %s

// The mma.sync kernel with cp.async: K and V get two 32-row stages, the
// first tile is fetched before the loop, each iteration fetches the next
// tile into the other stage (zero-filled past Sk), commits one group and
// waits until only that newest group is in flight.
// CHECK: memref.global "private" @causal_smem1 : memref<64x128xbf16, #gpu.address_space<workgroup>>
// CHECK: memref.global "private" @causal_smem2 : memref<64x128xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.func @causal
// CHECK: nvgpu.device_async_copy {{.*}}, 8, %{{.*}} {bypassL1}
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.for
// CHECK: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NEXT: gpu.barrier
// CHECK: nvgpu.ldmatrix
func.func @causal(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                  %v: memref<?x4x?x128xbf16>, %o: memref<?x4x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>)
      outs(%o : memref<?x4x?x128xbf16>) {causal}
  return
}
