// RUN: attn-opt %s --attn-tile-linear="chunk=2048" -verify-diagnostics

// The chunk's staging buffers live on the stack: bounded.
func.func @big_chunk(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                     %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{attn-tile-linear option chunk must be between 1 and 1024 (0: default), got 2048}}
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
