#include "kernels/rms_norm.hpp"

#include <cmath>

#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"

namespace troupe {

namespace {

float weight_at(const Tensor& w, int64_t i) {
  switch (w.dtype()) {
    case DType::BF16:
      return bf16_to_f32(w.data<uint16_t>()[i]);
    case DType::F16:
      return f16_to_f32(w.data<uint16_t>()[i]);
    default:
      return w.data<float>()[i];
  }
}

void check_weight(const Tensor& w, int64_t d, const char* op) {
  if ((w.dtype() != DType::F32 && w.dtype() != DType::BF16 && w.dtype() != DType::F16) || w.numel() != d ||
      !w.is_contiguous())
    fail("{}: weight must be f32, bf16 or f16 [{}], got {}", op, d, w.describe());
}

void norm_row(const float* x, const Tensor& w, float eps, float* out, int64_t d) {
  float ss = 0;
  for (int64_t i = 0; i < d; ++i) ss += x[i] * x[i];
  float scale = 1.0f / std::sqrt(ss / float(d) + eps);
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * scale * weight_at(w, i);
}

}  // namespace

void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  if (x.dtype() != DType::F32 || x.dim() != 2 || x.strides()[1] != 1)
    fail("rms_norm: input must be f32 [M, D], got {}", x.describe());
  const int64_t M = x.size(0), D = x.size(1);
  check_weight(weight, D, "rms_norm");
  if (out.shape() != x.shape() || out.dtype() != DType::F32)
    fail("rms_norm: output {} for input {}", out.describe(), x.describe());
  for (int64_t m = 0; m < M; ++m)
    norm_row(x.data<float>() + m * x.strides()[0], weight, eps, out.data<float>() + m * out.strides()[0], D);
}

void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& weight, float eps) {
  if (x.shape() != residual.shape() || x.dtype() != DType::F32 || residual.dtype() != DType::F32 || x.dim() != 2)
    fail("add_rms_norm: x {} and residual {} must be f32 [M, D] alike", x.describe(), residual.describe());
  const int64_t M = x.size(0), D = x.size(1);
  check_weight(weight, D, "add_rms_norm");
  for (int64_t m = 0; m < M; ++m) {
    float* xr = x.data<float>() + m * x.strides()[0];
    float* rr = residual.data<float>() + m * residual.strides()[0];
    for (int64_t i = 0; i < D; ++i) rr[i] += xr[i];
    norm_row(rr, weight, eps, xr, D);
  }
}

void head_rms_norm(Tensor& x, int64_t head_dim, const Tensor& weight, float eps) {
  if (x.dtype() != DType::F32 || x.dim() != 2 || x.size(1) % head_dim)
    fail("head_rms_norm: input {} with head_dim {}", x.describe(), head_dim);
  check_weight(weight, head_dim, "head_rms_norm");
  const int64_t heads = x.size(1) / head_dim;
  for (int64_t m = 0; m < x.size(0); ++m)
    for (int64_t h = 0; h < heads; ++h) {
      float* p = x.data<float>() + m * x.strides()[0] + h * head_dim;
      norm_row(p, weight, eps, p, head_dim);
    }
}

}  // namespace troupe
