// The 'window' example variant, as attn-opt --spec examples/window.json prints it.
// Run it through the pipeline with: attn-opt examples/window.mlir --attn-tile
module {
  func.func @window(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%arg3 : memref<?x16x?x128xbf16>) {causal, window = #attn.window<left = 1023, right = 0>}
    return
  }
}

