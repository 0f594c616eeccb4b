// RUN: attn-opt %s --attn-plan-tiles -verify-diagnostics

// Tile sizes written into the IR by hand are checked like the pass options.
func.func @bad_attr(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                    %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>)
    attributes {attn.options = {block_q = 0 : i64}} {
  // expected-error @+1 {{attn.options.block_q must be between 1 and 4096, got 0}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
