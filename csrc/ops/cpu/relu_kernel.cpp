// CPU kernels of sugar::relu, sugar::relu_backward and sugar::_relu_double_backward.
// Contiguous float32/bfloat16/float16 runs of relu and relu_backward go to the vectorized kernel
// table chosen for this CPU (kernels.h); everything else runs the scalar loops of loops.h.
#include "../output.h"
#include "../relu.h"
#include "../surrogate_math.h"
#include "grad_table.h"
#include "kernels.h"
#include "loops.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <memory>
#include <type_traits>

namespace sugar {
namespace {

static_assert(math::kNumSurrogates == cpu::kTableSurrogates, "kernels.h: kTableSurrogates is stale");

// Where a dtype's kernels sit in a KernelTable; -1 for float64 (scalar loops only).
template <typename scalar_t>
constexpr int storage_index() {
  if constexpr (std::is_same_v<scalar_t, float>) {
    return cpu::kStoreFloat;
  } else if constexpr (std::is_same_v<scalar_t, at::BFloat16>) {
    return cpu::kStoreBFloat16;
  } else if constexpr (std::is_same_v<scalar_t, at::Half>) {
    return cpu::kStoreHalf;
  } else {
    return -1;
  }
}

at::Tensor relu_cpu(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_args(self, surrogate, alpha, negative_only);
  const cpu::KernelTable* table = cpu::active_kernel_table();
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_cpu", [&] {
    constexpr int storage = storage_index<scalar_t>();
    const cpu::ForwardFn vec_fn = (table && storage >= 0) ? table->forward[storage] : nullptr;
    cpu::elementwise<scalar_t, 1>(
        out, {self},
        [](scalar_t x) -> scalar_t {
          return math::relu_forward<scalar_t>(x);
        },
        [vec_fn](char** data, int64_t n) {
          if (vec_fn == nullptr) return false;
          vec_fn(n, data[0], data[1]);
          return true;
        });
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
  const cpu::KernelTable* table = cpu::active_kernel_table();
  at::Tensor out = empty_relu_output(self);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_backward_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t a = static_cast<opmath_t>(spec.alpha);
    const bool neg = spec.negative_only;
    constexpr int storage = storage_index<scalar_t>();
    const cpu::BackwardFn vec_fn = (table && storage >= 0)
        ? table->backward[storage][static_cast<int>(spec.kind)][neg ? 1 : 0]
        : nullptr;
    const float vec_alpha = static_cast<float>(spec.alpha);
    // Large 16-bit tensors: d(x) from a table of all 65536 inputs (kernels.h, grad_table.h).
    std::shared_ptr<const float[]> lut;
    cpu::BackwardLutFn lut_fn = nullptr;
    if (table && storage >= 0 && sizeof(scalar_t) == 2 && self.numel() >= cpu::kGradTableMinElements) {
      lut = cpu::grad_table(*table, storage, static_cast<int>(spec.kind), vec_alpha, neg);
      if (lut) lut_fn = table->backward_lut[storage];
    }
    auto vector_kernel = [vec_fn, vec_alpha, lut_fn, lut_data = lut.get()](char** data, int64_t n) {
      if (lut_fn != nullptr) {
        lut_fn(n, data[0], data[1], data[2], lut_data);
        return true;
      }
      if (vec_fn == nullptr) return false;
      vec_fn(n, data[0], data[1], data[2], vec_alpha);
      return true;
    };
    SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
      // negative_only as a template argument, so the scalar loop has no test per element.
      auto run = [&](auto negative_only) {
        cpu::elementwise<scalar_t, 2>(
            out, {grad_output, self},
            [a](scalar_t g, scalar_t x) -> scalar_t {
              return static_cast<scalar_t>(math::relu_backward<kSurrogate, opmath_t>(
                  static_cast<opmath_t>(g), static_cast<opmath_t>(x), a, decltype(negative_only)::value));
            },
            vector_kernel);
      };
      if (neg) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
      }
    });
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_double_backward_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t a = static_cast<opmath_t>(spec.alpha);
    const bool neg = spec.negative_only;
    SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
      cpu::elementwise<scalar_t, 3>(out, {grad_grad, grad_output, self}, [a, neg](scalar_t gg, scalar_t g, scalar_t x) -> scalar_t {
        return static_cast<scalar_t>(math::relu_double_backward<kSurrogate, opmath_t>(
            static_cast<opmath_t>(gg), static_cast<opmath_t>(g), static_cast<opmath_t>(x), a, neg));
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
