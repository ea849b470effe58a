// Autograd for the sugar ops, in C++ so eager Python, TorchScript and pure C++ programs all get
// gradients. Each op's Function re-dispatches below autograd for its forward and calls the next
// op through the dispatcher for its backward:
//   relu            saves self only;       backward -> relu_backward
//   relu_backward   saves grad_output, self; backward -> relu_backward (w.r.t. grad_output)
//                                                      + _relu_double_backward (w.r.t. self)
//   _relu_double_backward: third order is not implemented and says so.
#include "../relu.h"

#include <torch/autograd.h>
#include <torch/library.h>

#include <initializer_list>
#include <string>

namespace sugar {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Whether any input needs a gradient. When none does (inference, no_grad, or the backward pass
// itself, which autograd runs with grad mode off unless create_graph=True), the ops skip building
// an autograd node: that node, not the kernel, is most of a small tensor's per-call cost.
// Forward-mode AD (dual tensors) still goes through the Function, which reports it unsupported.
bool needs_autograd(std::initializer_list<const at::Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) {
    for (const at::Tensor* t : inputs) {
      if (t->_fw_grad(/*level=*/0).defined()) return true;
    }
    return false;
  }
  for (const at::Tensor* t : inputs) {
    if (t->requires_grad() || t->_fw_grad(/*level=*/0).defined()) return true;
  }
  return false;
}

// The non-tensor arguments, kept in ctx->saved_data between forward and backward.
void save_surrogate_args(
    AutogradContext* ctx,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  ctx->saved_data.reserve(3);  // one allocation instead of growing the table twice
  ctx->saved_data["surrogate"] = std::string(surrogate);
  ctx->saved_data["alpha"] = alpha;
  ctx->saved_data["negative_only"] = negative_only;
}

struct SavedArgs {
  std::string surrogate;
  std::optional<double> alpha;
  bool negative_only;
};

SavedArgs load_surrogate_args(AutogradContext* ctx) {
  const auto& alpha = ctx->saved_data["alpha"];
  return SavedArgs{
      ctx->saved_data["surrogate"].toStringRef(),
      alpha.isNone() ? std::nullopt : std::optional<double>(alpha.toDouble()),
      ctx->saved_data["negative_only"].toBool()};
}

class ReluFunction : public torch::autograd::Function<ReluFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx,
      const at::Tensor& self,
      c10::string_view surrogate,
      std::optional<double> alpha,
      bool negative_only) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = sugar::relu(self, surrogate, alpha, negative_only);
    ctx->save_for_backward({self});
    save_surrogate_args(ctx, surrogate, alpha, negative_only);
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto args = load_surrogate_args(ctx);
    at::Tensor grad_self = sugar::relu_backward(
        grad_outputs[0], saved[0], args.surrogate, args.alpha, args.negative_only);
    return {grad_self, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class ReluBackwardFunction : public torch::autograd::Function<ReluBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx,
      const at::Tensor& grad_output,
      const at::Tensor& self,
      c10::string_view surrogate,
      std::optional<double> alpha,
      bool negative_only) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = sugar::relu_backward(grad_output, self, surrogate, alpha, negative_only);
    ctx->save_for_backward({grad_output, self});
    save_surrogate_args(ctx, surrogate, alpha, negative_only);
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto args = load_surrogate_args(ctx);
    const at::Tensor& grad_grad = grad_outputs[0];
    at::Tensor grad_grad_output;
    at::Tensor grad_self;
    // d(grad_input)/d(grad_output) = d(x): the same op applied to grad_grad.
    if (ctx->needs_input_grad(0)) {
      grad_grad_output = sugar::relu_backward(
          grad_grad, saved[1], args.surrogate, args.alpha, args.negative_only);
    }
    // d(grad_input)/d(x) = grad_output * s''(x).
    if (ctx->needs_input_grad(1)) {
      grad_self = sugar::_relu_double_backward(
          grad_grad, saved[0], saved[1], args.surrogate, args.alpha, args.negative_only);
    }
    return {grad_grad_output, grad_self, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class ReluDoubleBackwardFunction
    : public torch::autograd::Function<ReluDoubleBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx,
      const at::Tensor& grad_grad,
      const at::Tensor& grad_output,
      const at::Tensor& self,
      c10::string_view surrogate,
      std::optional<double> alpha,
      bool negative_only) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return {sugar::_relu_double_backward(
        grad_grad, grad_output, self, surrogate, alpha, negative_only)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(
        false,
        "sugar::relu: derivatives of third or higher order are not implemented (first and "
        "second order are)");
    return {};
  }
};

at::Tensor relu_autograd(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  if (!needs_autograd({&self})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sugar::relu(self, surrogate, alpha, negative_only);
  }
  return ReluFunction::apply(self, surrogate, alpha, negative_only)[0];
}

at::Tensor relu_backward_autograd(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  if (!needs_autograd({&grad_output, &self})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sugar::relu_backward(grad_output, self, surrogate, alpha, negative_only);
  }
  return ReluBackwardFunction::apply(grad_output, self, surrogate, alpha, negative_only)[0];
}

at::Tensor relu_double_backward_autograd(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  if (!needs_autograd({&grad_grad, &grad_output, &self})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sugar::_relu_double_backward(grad_grad, grad_output, self, surrogate, alpha, negative_only);
  }
  return ReluDoubleBackwardFunction::apply(
      grad_grad, grad_output, self, surrogate, alpha, negative_only)[0];
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, Autograd, m) {
  m.impl("relu", &relu_autograd);
  m.impl("relu_backward", &relu_backward_autograd);
  m.impl("_relu_double_backward", &relu_double_backward_autograd);
}

}  // namespace sugar
