// The 'gqa' example variant, as attn-opt --spec examples/gqa.json prints it.
// Run it through the pipeline with: attn-opt examples/gqa.mlir --attn-tile
module {
  func.func @gqa(%arg0: memref<?x32x?x128xbf16>, %arg1: memref<?x8x?x128xbf16>, %arg2: memref<?x8x?x128xbf16>, %arg3: memref<?x32x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x32x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>) outs(%arg3 : memref<?x32x?x128xbf16>) {causal}
    return
  }
}

