// CPU kernels of sugar::relu, sugar::relu_backward and sugar::_relu_double_backward.
// relu and relu_backward run the vectorized kernels of the table chosen for this CPU (kernels.h)
// for every dtype and layout (loops.h); the double backward is a scalar loop of the same math.
#include "../output.h"
#include "../relu.h"
#include "../surrogate_math.h"
#include "grad_table.h"
#include "kernels.h"
#include "loops.h"

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <memory>
#include <type_traits>

namespace sugar {
namespace {

// Where a dtype's kernels sit in a KernelTable.
template <typename scalar_t>
constexpr int storage_index() {
  if constexpr (std::is_same_v<scalar_t, float>) {
    return cpu::kStoreFloat;
  } else if constexpr (std::is_same_v<scalar_t, double>) {
    return cpu::kStoreDouble;
  } else if constexpr (std::is_same_v<scalar_t, at::BFloat16>) {
    return cpu::kStoreBFloat16;
  } else {
    static_assert(std::is_same_v<scalar_t, at::Half>, "float16/bfloat16/float32/float64 only");
    return cpu::kStoreHalf;
  }
}

at::Tensor relu_cpu(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_args(self, surrogate, alpha, negative_only);
  const cpu::KernelTable& table = cpu::active_kernel_table();
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_cpu", [&] {
        const cpu::ForwardFn fn = table.forward[storage_index<scalar_t>()];
        cpu::elementwise<scalar_t, 1>(
            out, {self}, [fn](char** data, int64_t n) { fn(n, data[0], data[1]); });
      });
  return out;
}

at::Tensor relu_backward_cpu(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const SurrogateSpec spec =
      check_relu_backward_args(grad_output, self, surrogate, alpha, negative_only);
  const cpu::KernelTable& table = cpu::active_kernel_table();
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_backward_cpu", [&] {
        constexpr int storage = storage_index<scalar_t>();
        const int kind = static_cast<int>(spec.kind);
        const bool neg = spec.negative_only;
        const cpu::BackwardFn fn = table.backward[storage][kind][neg ? 1 : 0];
        const double a = spec.alpha;
        // Large 16-bit tensors: d(x) from a table of all 65536 inputs (kernels.h, grad_table.h).
        std::shared_ptr<const float[]> lut;
        if (sizeof(scalar_t) == 2 && self.numel() >= cpu::kGradTableMinElements) {
          lut = cpu::grad_table(table, storage, kind, static_cast<float>(a), neg);
        }
        if (lut) {
          const cpu::BackwardLutFn lut_fn = table.backward_lut[storage];
          cpu::elementwise<scalar_t, 2>(
              out, {grad_output, self}, [lut_fn, t = lut.get()](char** data, int64_t n) {
                lut_fn(n, data[0], data[1], data[2], t);
              });
        } else {
          cpu::elementwise<scalar_t, 2>(out, {grad_output, self}, [fn, a](char** data, int64_t n) {
            fn(n, data[0], data[1], data[2], a);
          });
        }
      });
  return out;
}

at::Tensor relu_double_backward_cpu(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const SurrogateSpec spec = check_relu_double_backward_args(
      grad_grad, grad_output, self, surrogate, alpha, negative_only);
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_double_backward_cpu", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const opmath_t a = static_cast<opmath_t>(spec.alpha);
        const bool neg = spec.negative_only;
        SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
          cpu::elementwise<scalar_t, 3>(
              out, {grad_grad, grad_output, self}, [a, neg](char** data, int64_t n) {
                auto* o = reinterpret_cast<scalar_t*>(data[0]);
                const auto* gg = reinterpret_cast<const scalar_t*>(data[1]);
                const auto* g = reinterpret_cast<const scalar_t*>(data[2]);
                const auto* x = reinterpret_cast<const scalar_t*>(data[3]);
                for (int64_t i = 0; i < n; ++i) {
                  o[i] = static_cast<scalar_t>(math::relu_double_backward<kSurrogate, opmath_t>(
                      static_cast<opmath_t>(gg[i]), static_cast<opmath_t>(g[i]),
                      static_cast<opmath_t>(x[i]), a, neg));
                }
              });
        });
      });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, CPU, m) {
  m.impl("relu", &relu_cpu);
  m.impl("relu_backward", &relu_backward_cpu);
  m.impl("_relu_double_backward", &relu_double_backward_cpu);
}

}  // namespace sugar
