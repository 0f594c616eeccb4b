// RUN: attn-opt %s --attn-cpu-pipeline | FileCheck %s

// The whole CPU pipeline ends in the LLVM dialect, with the C interface the
// ExecutionEngine calls (attn-exec --device cpu).
// CHECK: llvm.func @causal(
// CHECK: llvm.intr.exp2
// CHECK: llvm.intr.fma
// CHECK: llvm.func @_mlir_ciface_causal(
// CHECK-NOT: attn.
func.func @causal(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                  %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) attributes {llvm.emit_c_interface} {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {causal}
  return
}
