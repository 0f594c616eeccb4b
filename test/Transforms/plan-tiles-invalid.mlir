// RUN: attn-opt %s --attn-plan-tiles="block-q=-4" -split-input-file -verify-diagnostics

func.func @bad_option(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                      %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{attn-plan-tiles option block-q must be between 1 and 4096 (0: default), got -4}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
