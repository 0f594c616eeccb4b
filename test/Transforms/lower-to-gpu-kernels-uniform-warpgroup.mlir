// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 uniform-warpgroup-index=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1" | FileCheck %s --check-prefix=TID

// The uniform warpgroup index: each consumer thread takes its warpgroup from
// lane 0 (shfl.sync.idx of %tid.x / 128 - 1 with source lane 0, CUTLASS's
// canonical warp index), right after setmaxnreg raised the consumers'
// registers, so that ptxas keeps what derives from it (the warpgroup's Q rows
// in the wgmma descriptors, the ping-pong turns) in uniform registers.
// Without the option the group is %tid.x / 128 - 1 itself: no shuffle.
// CHECK-LABEL: gpu.func @causal
// CHECK: setmaxnreg.inc.sync.aligned.u32 240
// CHECK: %[[GROUP:.*]] = arith.subi %{{.*}}, %c1{{.*}} : index
// CHECK: %[[GROUP32:.*]] = arith.index_cast %[[GROUP]] : index to i32
// CHECK: llvm.inline_asm has_side_effects asm_dialect = att "shfl.sync.idx.b32 $0, $1, 0, 0x1f, 0xffffffff;", "=r,r" %[[GROUP32]] : (i32) -> i32
// CHECK: wgmma.mma_async
// CHECK: gpu.return

// TID-LABEL: gpu.func @causal
// TID: setmaxnreg.inc.sync.aligned.u32 240
// TID-NOT: shfl.sync.idx.b32 $0, $1, 0, 0x1f
// TID: gpu.return
func.func @causal(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                  %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%o : memref<?x16x?x128xbf16>) {causal}
  return
}
