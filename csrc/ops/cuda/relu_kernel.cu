// CUDA kernels of sugar::relu, sugar::relu_backward and sugar::_relu_double_backward.
//
// Same checks, same output allocation (empty_relu_output, output.h: torch.relu's layout, as on
// the CPU and Meta) and the same scalar math (surrogate_math.h, in at::opmath_type<T>: float for
// float16/bfloat16/float32, double for float64) as the CPU kernels; only the loops differ
// (loops.cuh). The surrogate is a template argument (SUGAR_DISPATCH_SURROGATE hoists the switch out
// of the element loop); negative_only is a kernel argument, the same for every thread, so its
// branch is uniform.
#include "../output.h"
#include "../relu.h"
#include "../surrogate_math.h"
#include "loops.cuh"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace sugar {
namespace {

template <typename scalar_t>
struct ReluForwardOp {
  __device__ __forceinline__ scalar_t operator()(scalar_t x) const {
    // On the storage type: the input's bits pass through untouched (NaN payloads, -0.0).
    return math::relu_forward<scalar_t>(x);
  }
};

template <math::Surrogate K, typename scalar_t>
struct ReluBackwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  opmath_t alpha;
  bool negative_only;

  __device__ __forceinline__ scalar_t operator()(scalar_t grad, scalar_t x) const {
    return static_cast<scalar_t>(math::relu_backward<K, opmath_t>(
        static_cast<opmath_t>(grad), static_cast<opmath_t>(x), alpha, negative_only));
  }
};

template <math::Surrogate K, typename scalar_t>
struct ReluDoubleBackwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  opmath_t alpha;
  bool negative_only;

  __device__ __forceinline__ scalar_t
  operator()(scalar_t grad_grad, scalar_t grad, scalar_t x) const {
    return static_cast<scalar_t>(math::relu_double_backward<K, opmath_t>(
        static_cast<opmath_t>(grad_grad), static_cast<opmath_t>(grad), static_cast<opmath_t>(x),
        alpha, negative_only));
  }
};

at::Tensor relu_cuda(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_args(self, surrogate, alpha, negative_only);
  const c10::cuda::CUDAGuard device_guard(self.device());
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_cuda",
      [&] { cuda::elementwise<scalar_t, 1>(out, {self}, ReluForwardOp<scalar_t>{}); });
  return out;
}

at::Tensor relu_backward_cuda(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const SurrogateSpec spec =
      check_relu_backward_args(grad_output, self, surrogate, alpha, negative_only);
  const c10::cuda::CUDAGuard device_guard(self.device());
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_backward_cuda", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const opmath_t a = static_cast<opmath_t>(spec.alpha);
        SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
          cuda::elementwise<scalar_t, 2>(
              out, {grad_output, self},
              ReluBackwardOp<kSurrogate, scalar_t>{a, spec.negative_only});
        });
      });
  return out;
}

at::Tensor relu_double_backward_cuda(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const SurrogateSpec spec = check_relu_double_backward_args(
      grad_grad, grad_output, self, surrogate, alpha, negative_only);
  const c10::cuda::CUDAGuard device_guard(self.device());
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_double_backward_cuda", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const opmath_t a = static_cast<opmath_t>(spec.alpha);
        SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
          cuda::elementwise<scalar_t, 3>(
              out, {grad_grad, grad_output, self},
              ReluDoubleBackwardOp<kSurrogate, scalar_t>{a, spec.negative_only});
        });
      });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, CUDA, m) {
  m.impl("relu", &relu_cuda);
  m.impl("relu_backward", &relu_backward_cuda);
  m.impl("_relu_double_backward", &relu_double_backward_cuda);
}

}  // namespace sugar
