// Runs the causal kernel of examples/causal.json (bf16, 16 heads, D = 128,
// layout bhsd) through the generated launch function on contiguous
// [B, H, S, D] buffers, and compares a few rows with a float reference on
// the host. (A [B, S, H, D] buffer needs a spec with "layout": "bshd", as
// examples/bshd.json; the launch refuses strides the kernel was not built for.)
#include "kernels.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

static uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float fromBf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#define CHECK_CUDA(call)                                                       \
  do {                                                                         \
    cudaError_t e = (call);                                                    \
    if (e != cudaSuccess) {                                                    \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e));          \
      return 1;                                                                \
    }                                                                          \
  } while (0)

int main() {
  const int64_t B = 2, H = 16, S = 300, D = 128;
  char err[512];
  attn_kernel *kernel = nullptr;
  if (attn_kernel_load(ATTN_KERNELS_DIR "/" ATTN_KERNEL_CAUSAL_MANIFEST, &kernel, err,
                       sizeof err) != ATTN_OK) {
    std::fprintf(stderr, "load: %s\n", err);
    return 1;
  }
  size_t n = size_t(B * S * H * D);
  std::vector<uint16_t> hq(n), hk(n), hv(n), ho(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (size_t i = 0; i < n; ++i) {
    hq[i] = toBf16(normal(rng));
    hk[i] = toBf16(normal(rng));
    hv[i] = toBf16(normal(rng));
  }
  void *dq, *dk, *dv, *dout, *dlse;
  CHECK_CUDA(cudaMalloc(&dq, n * 2));
  CHECK_CUDA(cudaMalloc(&dk, n * 2));
  CHECK_CUDA(cudaMalloc(&dv, n * 2));
  CHECK_CUDA(cudaMalloc(&dout, n * 2));
  CHECK_CUDA(cudaMalloc(&dlse, size_t(B * H * S) * 4));
  CHECK_CUDA(cudaMemcpy(dq, hq.data(), n * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dk, hk.data(), n * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dv, hv.data(), n * 2, cudaMemcpyHostToDevice));
  // Contiguous [B, H, S, D], the spec's bhsd layout.
  auto bhsd = [&](void *p) {
    return attn_tensor{p, 4, {B, H, S, D}, {H * S * D, S * D, D, 1}, ATTN_BF16};
  };
  attn_tensor q = bhsd(dq), k = bhsd(dk), v = bhsd(dv), o = bhsd(dout);
  attn_tensor lse = {dlse, 3, {B, H, S}, {H * S, S, 1}, ATTN_F32};
  if (attn_launch_causal(kernel, &q, &k, &v, &o, &lse, nullptr, err, sizeof err) != ATTN_OK) {
    std::fprintf(stderr, "launch: %s\n", err);
    return 1;
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(ho.data(), dout, n * 2, cudaMemcpyDeviceToHost));

  // Host reference for a few (batch, head, row) triples.
  auto at = [&](const std::vector<uint16_t> &a, int64_t b, int64_t h, int64_t s, int64_t d) {
    return fromBf16(a[size_t(((b * H + h) * S + s) * D + d)]);
  };
  double maxErr = 0;
  for (int64_t b : {int64_t(0), B - 1})
    for (int64_t h : {int64_t(0), H - 1})
      for (int64_t i : {int64_t(0), int64_t(17), S - 1}) {
        std::vector<double> p(size_t(i + 1));
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += double(at(hq, b, h, i, d)) * at(hk, b, h, j, d);
          p[size_t(j)] = s / std::sqrt(double(D));
          m = std::max(m, p[size_t(j)]);
        }
        for (double &x : p)
          sum += (x = std::exp(x - m));
        for (int64_t d = 0; d < D; ++d) {
          double ref = 0;
          for (int64_t j = 0; j <= i; ++j)
            ref += p[size_t(j)] / sum * at(hv, b, h, j, d);
          maxErr = std::max(maxErr, std::fabs(ref - at(ho, b, h, i, d)));
        }
      }
  std::printf("causal, B=%ld H=%ld S=%ld D=%ld: max |out - ref| over 12 rows = %.3g\n",
              long(B), long(H), long(S), long(D), maxErr);
  attn_kernel_destroy(kernel);
  return maxErr < 2e-2 ? 0 : 1;
}
