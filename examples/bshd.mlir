// The 'bshd' example variant, as attn-opt --spec examples/bshd.json prints it.
// Run it through the pipeline with: attn-opt examples/bshd.mlir --attn-tile
module {
  func.func @bshd(%arg0: memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>, %arg1: memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>, %arg2: memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>, %arg3: memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>, memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>, memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>) outs(%arg3 : memref<?x16x?x128xf16, strided<[?, 128, 2048, 1]>>) {causal}
    return
  }
}

