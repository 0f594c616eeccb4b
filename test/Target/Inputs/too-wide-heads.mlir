// A value head dim past the GPU kernels' limit (see head-dim-limits.test).
module {
  func.func @too_wide(%q: memref<?x2x?x64xf32>, %k: memref<?x2x?x64xf32>, %v: memref<?x2x?x100000xf32>, %o: memref<?x2x?x100000xf32>) {
    attn.attention ins(%q, %k, %v : memref<?x2x?x64xf32>, memref<?x2x?x64xf32>, memref<?x2x?x100000xf32>) outs(%o : memref<?x2x?x100000xf32>)
    return
  }
}
