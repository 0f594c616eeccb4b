// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-prefetch=1" | FileCheck %s
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-prefetch=1" \
// RUN:   | FileCheck %s --check-prefix=BARRIER --strict-whitespace
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-prefetch=1" \
// RUN:   | FileCheck %s --check-prefix=BARRIERS --strict-whitespace

// --chunked-linear-prefetch: Q, K and V have two stages in the dynamic shared
// memory (44032 more bytes at Dk = 128, 27648 at Dk = 64); chunk 0 is fetched
// with cp.async (16-byte .cg, zero-filled past T: a source size of 0) before
// the chunk loop and committed as one group; each iteration, after the
// barrier that ends the previous chunk's reads, fetches chunk c + 1 into the
// other stage (guarded by c + 1 < chunks), commits one group (empty on the
// last chunk) and waits for all but one, so chunk c has landed; then the
// staging barrier. A feature map (elu + 1 here) is applied in place after the
// wait, by the thread that copied the chunk.
// CHECK-LABEL: gpu.func @gated_scalar
// CHECK-SAME: attn.dynamic_shared_memory = 107264
// CHECK-SAME: attn.prefetch = "cp.async"
// CHECK: scf.if
// CHECK: nvgpu.device_async_copy %arg0{{.*}} 8, %{{.*}} {bypassL1}
// CHECK: nvgpu.device_async_copy %arg1{{.*}} 8, %{{.*}} {bypassL1}
// CHECK: nvgpu.device_async_copy %arg2{{.*}} 8, %{{.*}} {bypassL1}
// CHECK: nvvm.cp.async.commit.group
// CHECK-NOT: gpu.barrier
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, )+}}f32)
// CHECK: gpu.barrier
// CHECK: scf.if
// CHECK: nvgpu.device_async_copy %arg0
// CHECK: nvgpu.device_async_copy %arg1
// CHECK: nvgpu.device_async_copy %arg2
// CHECK-NOT: gpu.barrier
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NOT: nvvm.cp.async
// CHECK: gpu.shuffle up
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync
// CHECK-NOT: nvvm.cp.async
// CHECK: scf.yield
// CHECK: gpu.return
func.func @gated_scalar(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?xf32>,
                        %h0: memref<?x4x128x128xf32>, %o: memref<?x4x?x128xbf16>,
                        %ht: memref<?x4x128x128xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?xf32>)
      initial_state(%h0 : memref<?x4x128x128xf32>) outs(%o : memref<?x4x?x128xbf16>)
      final_state(%ht : memref<?x4x128x128xf32>) {gate = #attn.gate<scalar>}
  return
}

// The feature map runs on the landed stage: after the wait, before the
// staging barrier.
// CHECK-LABEL: gpu.func @linear_normalized
// CHECK-SAME: attn.dynamic_shared_memory = 65024
// CHECK-SAME: attn.prefetch = "cp.async"
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NOT: gpu.barrier
// CHECK: math.exp
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync
// CHECK: gpu.return
func.func @linear_normalized(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                             %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) {feature_map = #attn.feature_map<elu_plus_one>, normalize}
  return
}

// Vector gates: two stages would take 159232 bytes, one block per SM (slower
// on the H200 than two blocks staging synchronously): no prefetch.
// CHECK-LABEL: gpu.func @gated_vector
// CHECK-SAME: attn.dynamic_shared_memory = 115200
// CHECK-NOT: attn.prefetch
// CHECK-NOT: nvvm.cp.async
// CHECK: nvvm.mma.sync
// CHECK: gpu.return
func.func @gated_vector(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?x128xf32>,
                        %o: memref<?x4x?x128xbf16>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xf32>)
      outs(%o : memref<?x4x?x128xbf16>) {gate = #attn.gate<vector>}
  return
}

// Without the flag: no cp.async, no second stage.
// OFF-LABEL: gpu.func @gated_scalar
// OFF-SAME: attn.dynamic_shared_memory = 63232
// OFF-NOT: attn.prefetch
// OFF-NOT: nvgpu.device_async_copy
// OFF-NOT: nvvm.cp.async
// OFF-LABEL: gpu.func @linear_normalized
// OFF-NOT: nvgpu.device_async_copy
// OFF-NOT: nvvm.cp.async
// OFF-LABEL: gpu.func @gated_vector
// OFF-SAME: attn.dynamic_shared_memory = 115200
// OFF-NOT: attn.prefetch
// OFF-NOT: nvgpu.device_async_copy
// OFF-NOT: nvvm.cp.async
// OFF: gpu.return

// Barriers as in lower-to-gpu-kernels-chunked-linear.mlir: every gpu.barrier
// directly in the chunk loop's body (8 spaces), none nested in a
// thread-dependent scf.if / scf.for (the prefetch's `c + 1 < chunks` guard
// and copy loops hold none), and no more of them than without prefetch.
// BARRIER-NOT: {{^}}          {{ *}}gpu.barrier
// BARRIERS-LABEL: gpu.func @gated_scalar
// BARRIERS-COUNT-5: {{^}}        gpu.barrier
// BARRIERS-LABEL: gpu.func @linear_normalized
// BARRIERS-COUNT-3: {{^}}        gpu.barrier
// BARRIERS-LABEL: gpu.func @gated_vector
// BARRIERS-COUNT-5: {{^}}        gpu.barrier
// BARRIERS-NOT: gpu.barrier
// BARRIERS: gpu.return
