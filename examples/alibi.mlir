// The 'alibi' example variant, as attn-opt --spec examples/alibi.json prints it.
// Run it through the pipeline with: attn-opt examples/alibi.mlir --attn-tile
module {
  func.func @alibi(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<16xf32>, %arg4: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) alibi_slopes(%arg3 : memref<16xf32>) outs(%arg4 : memref<?x16x?x128xbf16>)
    return
  }
}

