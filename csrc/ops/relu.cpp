// The sugar op library: every schema, the public C++ entry points, and the shared checks.
// Kernels live beside their dispatch key: cpu/, cuda/, meta/, autograd/.
#include "relu.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/ScalarType.h>
#include <torch/library.h>

#include <sstream>

TORCH_LIBRARY(sugar, m) {
  m.def(
      "relu(Tensor self, str surrogate=\"bsilu\", float? alpha=None, bool negative_only=False) "
      "-> Tensor");
  m.def(
      "relu_backward(Tensor grad_output, Tensor self, str surrogate, float? alpha, "
      "bool negative_only) -> Tensor");
  // Private: the self-part of relu_backward's gradient, grad_grad * grad_output * s''(self).
  m.def(
      "_relu_double_backward(Tensor grad_grad, Tensor grad_output, Tensor self, str surrogate, "
      "float? alpha, bool negative_only) -> Tensor");
  // Private: which CPU kernels run ("default", "avx2" or "avx512"; SUGAR_CPU_CAPABILITY forces
  // one); for tests, benchmarks and build_info().
  m.def("_cpu_capability() -> str", &sugar::cpu::cpu_capability_name);
}

namespace sugar {

namespace {
std::string dtype_name(at::ScalarType t) {
  return std::string("torch.") + std::string(c10::getDtypeNames(t).first);
}
}  // namespace

void check_floating(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.defined(), op, ": ", arg, " is an undefined tensor");
  const auto st = t.scalar_type();
  const bool ok = st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16;
  TORCH_CHECK_TYPE(
      ok, op, ": ", arg,
      " must be a floating-point tensor of dtype torch.float16, "
      "torch.bfloat16, torch.float32 or torch.float64, but got dtype ",
      dtype_name(st));
}

void check_like(
    const char* op,
    const char* arg,
    const at::Tensor& t,
    const char* ref_arg,
    const at::Tensor& ref) {
  TORCH_CHECK_VALUE(t.defined(), op, ": ", arg, " is an undefined tensor");
  TORCH_CHECK_VALUE(
      t.device() == ref.device(), op, ": ", arg, " and ", ref_arg,
      " must be on the same device, but ", arg, " is on ", t.device(), " and ", ref_arg, " is on ",
      ref.device());
  TORCH_CHECK_TYPE(
      t.scalar_type() == ref.scalar_type(), op, ": ", arg, " and ", ref_arg,
      " must have the same dtype, but ", arg, " has ", dtype_name(t.scalar_type()), " and ",
      ref_arg, " has ", dtype_name(ref.scalar_type()));
  TORCH_CHECK_VALUE(
      t.sym_sizes() == ref.sym_sizes(), op, ": ", arg, " and ", ref_arg,
      " must have the same shape, but ", arg, " has shape ", t.sym_sizes(), " and ", ref_arg,
      " has shape ", ref.sym_sizes());
}

SurrogateSpec check_relu_args(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_floating(kReluName, "self", self);
  // The forward pass does not use the surrogate, but a bad one must fail here, not in backward.
  return parse_surrogate(kReluName, surrogate, alpha, negative_only);
}

SurrogateSpec check_relu_backward_args(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_floating(kReluBackwardName, "self", self);
  check_like(kReluBackwardName, "grad_output", grad_output, "self", self);
  return parse_surrogate(kReluBackwardName, surrogate, alpha, negative_only);
}

SurrogateSpec check_relu_double_backward_args(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_floating(kReluDoubleBackwardName, "self", self);
  check_like(kReluDoubleBackwardName, "grad_output", grad_output, "self", self);
  check_like(kReluDoubleBackwardName, "grad_grad", grad_grad, "self", self);
  return parse_surrogate(kReluDoubleBackwardName, surrogate, alpha, negative_only);
}

at::Tensor relu(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sugar::relu", "")
          .typed<at::Tensor(const at::Tensor&, c10::string_view, std::optional<double>, bool)>();
  return op.call(self, surrogate, alpha, negative_only);
}

at::Tensor relu_backward(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("sugar::relu_backward", "")
                       .typed<at::Tensor(
                           const at::Tensor&, const at::Tensor&, c10::string_view,
                           std::optional<double>, bool)>();
  return op.call(grad_output, self, surrogate, alpha, negative_only);
}

at::Tensor _relu_double_backward(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("sugar::_relu_double_backward", "")
                       .typed<at::Tensor(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           c10::string_view, std::optional<double>, bool)>();
  return op.call(grad_grad, grad_output, self, surrogate, alpha, negative_only);
}

}  // namespace sugar
