// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-split-state=1" | FileCheck %s
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1" | FileCheck %s --check-prefix=ONE
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-split-state=1" | FileCheck %s --check-prefix=NOWG
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-split-state=1 chunked-linear-producer-k-scale=1" | FileCheck %s --check-prefix=PKS

// The split-state chunkwise kernel (WgmmaSplitStateLinearKernel.cpp): one
// block of 512 threads per (batch, head), 1 per SM; warpgroup 0 produces,
// 1 runs the state recurrence, 2 and 3 the outputs of alternate chunks.
// Shared memory at Dk = Dv = 128 with gates: 2 stages x 48 KiB (Q, K, V),
// K~ 16 KiB, 2 state slots x 32 KiB, G, 8 mbarriers = 180800 bytes.
// CHECK-LABEL: gpu.func @gated_scalar
// CHECK-SAME: attn.block_threads = 512
// CHECK-SAME: attn.dynamic_shared_memory = 180800
// CHECK-SAME: attn.grid_x = 1
// CHECK-SAME: attn.split_state
// CHECK-SAME: attn.tensor_cores = "wgmma.chunkwise"
// CHECK-SAME: nvvm.maxntid = array<i32: 512, 1, 1>, nvvm.minctasm = 1
// Barriers: full (expect_tx + 32 gate lanes), empty (4 state warps + 4
// output warps), ready (the state warpgroup), free (4 output warps).
// CHECK: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c33_i32
// CHECK: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c8_i32
// CHECK: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c1_i32
// CHECK: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c4_i32
// Producer: Q, K and V, 2 boxes each (49152 bytes a stage), then the gate scan.
// CHECK: setmaxnreg.dec.sync.aligned.u32 24
// CHECK: scf.for
// CHECK: mbarrier.try_wait.parity
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %{{.*}}, %c49152_i32
// CHECK-COUNT-6: cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes
// CHECK: gpu.shuffle  up
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// State: S_0 into slot 0 and published, then per chunk K~ written and
// fenced, S += K~^T V (A MN-major: transposes 1, 1) over N = Dv = 128,
// the stage released, slot (c + 1) % 2 waited for, written (64 bf16 pairs
// per thread), published.
// CHECK: setmaxnreg.inc.sync.aligned.u32 168
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){127}f32}})
// CHECK: mbarrier.try_wait.parity
// CHECK: vector.store {{.*}} vector<8xbf16>
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// CHECK: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: wgmma.fence.sync.aligned;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}p, 1, 1, 1, 1;
// CHECK: wgmma.commit_group.sync.aligned;
// CHECK-NEXT: wgmma.wait_group.sync.aligned 0;
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK: mbarrier.try_wait.parity
// CHECK-COUNT-64: vector.store {{.*}} {alignment = 4 : i64} : memref<16384xbf16, #gpu.address_space<workgroup>>, vector<2xbf16>
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK: scf.yield
// Final state.
// CHECK: memref.store {{.*}} : memref<?x4x128x128xf32>
// Outputs: chunks w, w + 2, ...: wait for the stage and the state slot;
// A = Q K^T (N = 64) and Q S_c (N = Dv = 128, S MN-major) as two groups;
// slot freed after both; O += A V with A from registers; stage released.
// The stage's and the slot's byte offsets are broadcast from lane 0 before
// the descriptors are built from them, so that ptxas keeps those uniform.
// CHECK: setmaxnreg.inc.sync.aligned.u32 160
// CHECK: scf.for
// CHECK-COUNT-2: "shfl.sync.idx.b32 $0, $1, 0, 0x1f, 0xffffffff;", "=r,r"
// CHECK: mbarrier.try_wait.parity
// CHECK: mbarrier.try_wait.parity
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}p, 1, 1, 0, 0;
// CHECK: wgmma.commit_group.sync.aligned;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}p, 1, 1, 0, 1;
// CHECK: wgmma.commit_group.sync.aligned;
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: wgmma.wait_group.sync.aligned 0;
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}}, {$128, $129, $130, $131}, $132, p, 1, 1, 1;
// CHECK: wgmma.wait_group.sync.aligned 0;
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK: vector.store {{.*}} {alignment = 4 : i64} : memref<?x4x?x128xbf16>, vector<2xbf16>
// CHECK: gpu.return

// Ungated, head dim 64, f16: no K~ buffer, no gate scan, no exp2; K read in
// place by the state update.
// CHECK-LABEL: gpu.func @linear_plain
// CHECK-SAME: attn.dynamic_shared_memory = 66112
// CHECK-SAME: attn.split_state
// CHECK: mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c1_i32
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %{{.*}}, %c24576_i32
// CHECK-COUNT-3: cp.async.bulk.tensor.4d
// CHECK-NOT: gpu.shuffle
// CHECK-NOT: llvm.nvvm.ex2
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{.*}}p, 1, 1, 1, 1;
// CHECK-NOT: llvm.nvvm.ex2
// CHECK: arith.constant 1.250000e-01 : f32
// CHECK: gpu.return

// Vector gates are outside it: the mma.sync kernel (no vector option here).
// CHECK-LABEL: gpu.func @gated_vector
// CHECK-NOT: attn.split_state
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"

// Without the option: the one-consumer wgmma kernel.
// ONE-LABEL: gpu.func @gated_scalar
// ONE-SAME: attn.block_threads = 256
// ONE-NOT: attn.split_state
// ONE-LABEL: gpu.func @linear_plain
// ONE-SAME: attn.block_threads = 256
// Without the wgmma kernel, the option does nothing: mma.sync.
// NOWG-LABEL: gpu.func @gated_scalar
// NOWG-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// NOWG-NOT: wgmma

// With chunked-linear-producer-k-scale (experimental): warps 1 and 2 of the
// producer warpgroup write K~[c % 2] (a second 16 KiB buffer: 197200 bytes)
// and release it on a barrier of 64 arrivals; the state warpgroup waits on
// it instead of scaling K (no K~ stores, no named barrier before its update).
// Setmaxnreg 32 / 160 / 160. Ungated kernels do not change.
// PKS-LABEL: gpu.func @gated_scalar
// PKS-SAME: attn.dynamic_shared_memory = 197200
// PKS-SAME: attn.producer_k_scale
// PKS: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c64_i32
// PKS: setmaxnreg.dec.sync.aligned.u32 32
// PKS: scf.for
// PKS: mbarrier.try_wait.parity
// PKS: llvm.nvvm.ex2.approx.ftz.f32
// PKS-COUNT-16: vector.store {{.*}} vector<8xbf16>
// PKS: fence.proxy.async.shared::cta;
// PKS: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// PKS: setmaxnreg.inc.sync.aligned.u32 160
// PKS: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){127}f32}})
// PKS: mbarrier.try_wait.parity
// PKS: mbarrier.try_wait.parity
// PKS-NOT: vector<8xbf16>
// PKS-NOT: bar.sync
// PKS: wgmma.fence.sync.aligned;
// PKS-COUNT-8: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.*}}p, 1, 1, 1, 1;
// (The output warpgroups keep the unbroadcast offsets: it spilled 28 B here.)
// PKS: setmaxnreg.inc.sync.aligned.u32 160
// PKS-NOT: shfl.sync.idx.b32 $0, $1, 0, 0x1f
// PKS-LABEL: gpu.func @linear_plain
// PKS-SAME: attn.dynamic_shared_memory = 66112
// PKS-NOT: attn.producer_k_scale

func.func @gated_scalar(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?xf32>,
                        %h0: memref<?x4x128x128xf32>, %o: memref<?x4x?x128xbf16>,
                        %ht: memref<?x4x128x128xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?xf32>)
      initial_state(%h0 : memref<?x4x128x128xf32>) outs(%o : memref<?x4x?x128xbf16>)
      final_state(%ht : memref<?x4x128x128xf32>) {gate = #attn.gate<scalar>}
  return
}

func.func @linear_plain(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                        %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) {scale = 0.125 : f32}
  return
}

func.func @gated_vector(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?x128xf32>,
                        %o: memref<?x4x?x128xbf16>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xf32>)
      outs(%o : memref<?x4x?x128xbf16>) {gate = #attn.gate<vector>}
  return
}
