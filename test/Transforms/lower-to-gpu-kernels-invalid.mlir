// RUN: attn-opt %s --attn-lower-to-gpu-kernels -verify-diagnostics

// The GPU lowering needs the plan (tile sizes and k-tile ranges).
func.func @no_plan(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                   %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{has no tile_plan; run attn-plan-tiles first}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
