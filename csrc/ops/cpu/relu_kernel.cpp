// CPU kernels of sugar::relu, sugar::relu_backward and sugar::_relu_double_backward.
#include "../relu.h"
#include "../surrogate_math.h"
#include "loops.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

namespace sugar {
namespace {

at::Tensor relu_cpu(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_floating(kReluName, "self", self);
  // The forward pass does not use the surrogate, but a bad one must fail here, not in backward.
  parse_surrogate(kReluName, surrogate, alpha, negative_only);
  at::Tensor out = at::empty_like(self);
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(self).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_cpu", [&] {
    cpu::elementwise<scalar_t, 1>(iter, [](scalar_t x) -> scalar_t {
      return math::relu_forward<scalar_t>(x);
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
  check_floating(kReluBackwardName, "self", self);
  check_like(kReluBackwardName, "grad_output", grad_output, "self", self);
  const SurrogateSpec spec = parse_surrogate(kReluBackwardName, surrogate, alpha, negative_only);
  at::Tensor out = at::empty_like(self);
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_const_input(grad_output)
                  .add_const_input(self)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_backward_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t a = static_cast<opmath_t>(spec.alpha);
    const bool neg = spec.negative_only;
    SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
      cpu::elementwise<scalar_t, 2>(iter, [a, neg](scalar_t g, scalar_t x) -> scalar_t {
        return static_cast<scalar_t>(math::relu_backward<kSurrogate, opmath_t>(
            static_cast<opmath_t>(g), static_cast<opmath_t>(x), a, neg));
      });
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
  check_floating(kReluDoubleBackwardName, "self", self);
  check_like(kReluDoubleBackwardName, "grad_output", grad_output, "self", self);
  check_like(kReluDoubleBackwardName, "grad_grad", grad_grad, "self", self);
  const SurrogateSpec spec =
      parse_surrogate(kReluDoubleBackwardName, surrogate, alpha, negative_only);
  at::Tensor out = at::empty_like(self);
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_const_input(grad_grad)
                  .add_const_input(grad_output)
                  .add_const_input(self)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "sugar_relu_double_backward_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t a = static_cast<opmath_t>(spec.alpha);
    const bool neg = spec.negative_only;
    SUGAR_DISPATCH_SURROGATE(spec.kind, [&] {
      cpu::elementwise<scalar_t, 3>(iter, [a, neg](scalar_t gg, scalar_t g, scalar_t x) -> scalar_t {
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
