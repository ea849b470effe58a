// Meta kernels: shapes, dtypes and strides without data, for FakeTensor, torch.compile and
// torch.export. They run the same argument checks as the real kernels and allocate the output
// exactly as they do (empty_relu_output: torch.relu's layout, output.h). Everything here is
// SymInt-safe, so dynamic shapes trace too.
#include "../output.h"
#include "../relu.h"

#include <torch/library.h>

namespace sugar {
namespace {

at::Tensor relu_meta(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_args(self, surrogate, alpha, negative_only);
  return empty_relu_output(self);
}

at::Tensor relu_backward_meta(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_backward_args(grad_output, self, surrogate, alpha, negative_only);
  return empty_relu_output(self);
}

at::Tensor relu_double_backward_meta(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  check_relu_double_backward_args(grad_grad, grad_output, self, surrogate, alpha, negative_only);
  return empty_relu_output(self);
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, Meta, m) {
  m.impl("relu", &relu_meta);
  m.impl("relu_backward", &relu_backward_meta);
  m.impl("_relu_double_backward", &relu_double_backward_meta);
}

}  // namespace sugar
