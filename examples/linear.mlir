// The 'linear' example variant, as attn-opt --spec examples/linear.json prints it.
// Run it through the pipeline with: attn-opt examples/linear.mlir --attn-tile
module {
  func.func @linear(%arg0: memref<?x16x?x64xbf16>, %arg1: memref<?x16x?x64xbf16>, %arg2: memref<?x16x?x64xbf16>, %arg3: memref<?x16x?x64xbf16>) {
    attn.linear_attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x64xbf16>, memref<?x16x?x64xbf16>, memref<?x16x?x64xbf16>) outs(%arg3 : memref<?x16x?x64xbf16>) {feature_map = #attn.feature_map<elu_plus_one>, normalize}
    return
  }
}

