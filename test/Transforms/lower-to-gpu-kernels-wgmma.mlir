// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s

// The Hopper kernel: one public 1024-byte aligned dynamic shared buffer, the
// spec's arguments plus one tensor-map pointer each for q, k and v, a
// producer warpgroup (TMA loads into full/empty mbarrier stages, registers
// given back) and two consumer warpgroups (wgmma for both products: S from
// shared-memory descriptors, P V with P in registers and V transposed).
// CHECK: gpu.module @attn_kernels
// CHECK: memref.global "public" @attn_dynamic_smem : memref<0xi8, #gpu.address_space<workgroup>> {alignment = 1024 : i64}
// CHECK: gpu.func @causal(%{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x2x?x128xbf16>, %{{.*}}: memref<?x2x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel
// CHECK-SAME: attn.block_threads = 384 : i64
// CHECK-SAME: attn.dynamic_shared_memory = 163912 : i64
// CHECK-SAME: attn.tensor_cores = "wgmma"
// CHECK-SAME: attn.tensor_maps = [{argument = 0 : i64, box_cols = 64 : i64, box_rows = 128 : i64, swizzle = 128 : i64}, {argument = 1 : i64
// CHECK-SAME: nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32
// CHECK: mbarrier.init.shared::cta.b64
// CHECK: fence.mbarrier_init.release.cluster
// CHECK: gpu.barrier
// Producer: Q, then per k tile wait for the stage to be empty and refill it.
// CHECK: setmaxnreg.dec.sync.aligned.u32 24
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64
// CHECK: cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes
// CHECK: scf.for
// CHECK: mbarrier.try_wait.parity.shared::cta.b64
// CHECK: cp.async.bulk.tensor.4d
// Consumers: a software pipeline over k tiles. Iteration j issues S_j, then
// the previous tile's P V, waits for S_j alone (wait_group 1), releases K_j,
// runs the softmax (masked and unmasked copies), then waits for P V and
// releases that V stage. The last tile's P V follows the loop.
// CHECK: } else {
// CHECK: setmaxnreg.inc.sync.aligned.u32 240
// CHECK: scf.for
// CHECK: mbarrier.try_wait.parity.shared::cta.b64
// CHECK: wgmma.fence.sync.aligned
// CHECK: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}, p, 1, 1, 0, 0;
// CHECK: wgmma.commit_group.sync.aligned
// CHECK: scf.if
// CHECK: mbarrier.try_wait.parity.shared::cta.b64
// CHECK: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}, {$128, $129, $130, $131}, $132, p, 1, 1, 1;
// CHECK: wgmma.commit_group.sync.aligned
// CHECK: wgmma.wait_group.sync.aligned 1
// CHECK: } else {
// CHECK: wgmma.wait_group.sync.aligned 0
// CHECK: mbarrier.arrive.shared::cta.b64
// Softmax: the scale folded into one FFMA per element, then MUFU.EX2 (ftz).
// CHECK: math.fma
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: wgmma.wait_group.sync.aligned 0
// CHECK: mbarrier.arrive.shared::cta.b64
// CHECK: scf.yield
// CHECK: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}, {$128, $129, $130, $131}, $132, p, 1, 1, 1;
// CHECK: wgmma.wait_group.sync.aligned 0
func.func @causal(%q: memref<?x4x?x128xbf16>, %k: memref<?x2x?x128xbf16>,
                  %v: memref<?x2x?x128xbf16>, %o: memref<?x4x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xbf16>, memref<?x2x?x128xbf16>, memref<?x2x?x128xbf16>)
      outs(%o : memref<?x4x?x128xbf16>) {causal}
  return
}

// -----

// Head dim 64, f16: one 64-column box per tile; V's dims give m64n64 for P V.
// CHECK-LABEL: gpu.func @d64
// CHECK-SAME: attn.dynamic_shared_memory = 81992 : i64
// CHECK: wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16
// CHECK: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16
func.func @d64(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
               %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>)
  return
}

// -----

// Outside what the Hopper kernel covers (head dim 32; f32): the portable
// kernels, with no tensor maps.
// CHECK-LABEL: gpu.func @d32
// CHECK-NOT: attn.tensor_maps
// CHECK-NOT: wgmma
// CHECK: gpu.return
func.func @d32(%q: memref<?x4x?x32xbf16>, %k: memref<?x4x?x32xbf16>,
               %v: memref<?x4x?x32xbf16>, %o: memref<?x4x?x32xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x32xbf16>, memref<?x4x?x32xbf16>, memref<?x4x?x32xbf16>)
      outs(%o : memref<?x4x?x32xbf16>)
  return
}

// -----

// CHECK-LABEL: gpu.func @f32
// CHECK-NOT: attn.tensor_maps
// CHECK-NOT: wgmma
// CHECK: gpu.return
func.func @f32(%q: memref<?x4x?x128xf32>, %k: memref<?x4x?x128xf32>,
               %v: memref<?x4x?x128xf32>, %o: memref<?x4x?x128xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xf32>, memref<?x4x?x128xf32>, memref<?x4x?x128xf32>)
      outs(%o : memref<?x4x?x128xf32>)
  return
}
