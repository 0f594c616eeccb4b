// The 'causal' example variant, as attn-opt --spec examples/causal.json prints it.
// Run it through the pipeline with: attn-opt examples/causal.mlir --attn-tile
module {
  func.func @causal(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%arg3 : memref<?x16x?x128xbf16>) {causal}
    return
  }
}

