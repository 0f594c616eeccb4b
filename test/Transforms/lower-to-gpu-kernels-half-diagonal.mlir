// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1 half-diagonal-keys=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 persistent=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=64" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 half-diagonal-keys=1" | FileCheck %s --check-prefix=K64

// Half diagonal keys: under a causal bound an item's last k tile is the
// diagonal one, where the first consumer warpgroup's rows see at most its
// first 64 keys. That tile runs after the loop (peeled), in two copies: the
// half one, S = Q K^T with N = 64 behind its own (tagged) fence so that LLVM
// does not hoist one fence above the branch, and the whole one. The loop
// runs to the item's end less one tile where the last is a half one (a
// select, so the loop's bounds stay uniform). The last P V has a half copy
// too: 4 k steps of 16 keys instead of 8. The first S step of every copy
// overwrites its accumulators (scale-d = 0): zero moves between the fence
// and the product made ptxas insert a warpgroup.arrive.
// CHECK-LABEL: gpu.func @causal
// CHECK-SAME: attn.half_diagonal_keys
// CHECK: arith.select
// CHECK: scf.for
// CHECK: "wgmma.fence.sync.aligned;"
// CHECK: setp.ne.b32 p, 0, 0;\0Awgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {$0, {{.*}}, $63}, $128, $129
// CHECK-COUNT-3: m64n128k16.f32.bf16.bf16 {$0, {{.*}}, $63}, $128, $129
// CHECK: "wgmma.fence.sync.aligned; // half keys"
// CHECK: setp.ne.b32 p, 0, 0;\0Awgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, $64, $65
// CHECK-COUNT-3: m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, $64, $65
// CHECK-NOT: m64n128k16
// CHECK: "wgmma.fence.sync.aligned; // half keys"
// CHECK-COUNT-4: m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, {$64, $65, $66, $67}, $68
// CHECK: wgmma.commit_group
// CHECK-NEXT: wgmma.wait_group.sync.aligned 0
// CHECK: "wgmma.fence.sync.aligned;"
// CHECK-COUNT-8: m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, {$64, $65, $66, $67}, $68
// CHECK: wgmma.commit_group
// CHECK-NEXT: wgmma.wait_group.sync.aligned 0
// CHECK: gpu.return

// A window's upper bound is the diagonal too.
// CHECK-LABEL: gpu.func @window
// CHECK-SAME: attn.half_diagonal_keys
// CHECK: "wgmma.fence.sync.aligned; // half keys"
// CHECK: gpu.return

// Without a causal or window bound no tile is a diagonal one: ignored.
// CHECK-LABEL: gpu.func @dense
// CHECK-NOT: attn.half_diagonal_keys
// CHECK-NOT: half keys
// CHECK: gpu.return

// Off: no half copy, and the first S step accumulates onto zeros as before.
// OFF-LABEL: gpu.func @causal
// OFF-NOT: attn.half_diagonal_keys
// OFF-NOT: half keys
// OFF-NOT: m64n64k16.f32.bf16.bf16 {$0, {{.*}}, $31}, $64, $65
// OFF: gpu.return

// 64-key tiles have no half to skip: ignored.
// K64-LABEL: gpu.func @causal
// K64-NOT: attn.half_diagonal_keys
// K64-NOT: half keys
// K64: gpu.return
func.func @causal(%q: memref<?x8x?x64xbf16>, %k: memref<?x8x?x64xbf16>,
                  %v: memref<?x8x?x64xbf16>, %o: memref<?x8x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) outs(%o : memref<?x8x?x64xbf16>) {causal}
  return
}

func.func @window(%q: memref<?x8x?x64xf16>, %k: memref<?x8x?x64xf16>,
                  %v: memref<?x8x?x64xf16>, %o: memref<?x8x?x64xf16>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xf16>, memref<?x8x?x64xf16>, memref<?x8x?x64xf16>) outs(%o : memref<?x8x?x64xf16>) {window = #attn.window<left = 255, right = 0>}
  return
}

func.func @dense(%q: memref<?x8x?x64xbf16>, %k: memref<?x8x?x64xbf16>,
                 %v: memref<?x8x?x64xbf16>, %o: memref<?x8x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) outs(%o : memref<?x8x?x64xbf16>)
  return
}
