// Autograd for the sugar ops, in C++ so eager Python, TorchScript and pure C++ programs all get
// gradients. Written the way PyTorch's generated VariableType kernels are (one autograd Node per
// op, `collect_next_edges`/`set_history`, SavedVariable), not as a torch::autograd::Function:
//  - functorch transforms (grad, vjp, jacrev, hessian) refuse C++ torch::autograd::Function but
//    run ops whose autograd kernel builds an ordinary Node, as every ATen op does;
//  - the kernel computes forward-mode tangents too (jvp, jacfwd, torch.autograd.forward_ad), as
//    generated kernels do, which a C++ Function cannot;
//  - a Node with two SavedVariables costs a third of a Function's context per call (measured with
//    callgrind: about 3,500 instructions against 10,000), which is most of a small tensor's cost.
//
//   relu                   saves self;              backward -> relu_backward;
//                          tangent: relu_backward(self_t, self) = self_t * d(self) (the FGI form)
//   relu_backward          saves grad_output, self; backward -> relu_backward (w.r.t. grad_output)
//                                                   + _relu_double_backward (w.r.t. self);
//                          tangent: relu_backward(g_t, self) + g * s''(self) * self_t
//   _relu_double_backward  derivatives of third order: a clear error, in both modes.
#include "../relu.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/add.h>
#include <c10/core/DispatchKeySet.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/library.h>
#include <torch/version.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace sugar {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::TraceableFunction;
using torch::autograd::variable_list;

// How autograd holds a Node: c10::intrusive_ptr from torch 2.13, std::shared_ptr before (what
// set_history and the edges take). The one difference between the torch versions this file builds
// against (README, "Supported torch versions").
template <typename T>
auto make_node() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 13)
  return c10::make_intrusive<T>();
#else
  return std::make_shared<T>();
#endif
}
template <typename T>
using NodePtr = decltype(make_node<T>());

constexpr const char* kThirdOrder =
    "sugar::relu: derivatives of third or higher order are not implemented (first and second "
    "order are, in reverse and forward mode)";

// The non-tensor arguments every node keeps for its backward call.
struct SurrogateArgs {
  std::string surrogate;
  std::optional<double> alpha;
  bool negative_only = false;
};

bool has_forward_grad(const at::Tensor& t) {
  return t.defined() && t._fw_grad(/*level=*/0).defined();
}

// Backward of sugar::relu: grad_self = relu_backward(grad, self).
struct SugarReluBackward : public TraceableFunction {
  SavedVariable self_;
  SurrogateArgs args_;

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    variable_list out(1);
    if (grads[0].defined() && task_should_compute_output(0)) {
      out[0] = sugar::relu_backward(
          grads[0], self_.unpack(), args_.surrogate, args_.alpha, args_.negative_only);
    }
    return out;
  }
  std::string name() const override {
    return "SugarReluBackward0";
  }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    self_.reset_data();
  }
};

// Backward of sugar::relu_backward (second order): d(grad_input)/d(grad_output) = d(self), the
// same op applied to the incoming gradient; d(grad_input)/d(self) = grad_output * s''(self).
struct SugarReluBackwardBackward : public TraceableFunction {
  SavedVariable grad_output_;
  SavedVariable self_;
  SurrogateArgs args_;

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    variable_list out(2);
    const at::Tensor& grad_grad = grads[0];
    if (!grad_grad.defined()) return out;
    const at::Tensor self = self_.unpack();
    if (task_should_compute_output(0)) {
      out[0] =
          sugar::relu_backward(grad_grad, self, args_.surrogate, args_.alpha, args_.negative_only);
    }
    if (task_should_compute_output(1)) {
      out[1] = sugar::_relu_double_backward(
          grad_grad, grad_output_.unpack(), self, args_.surrogate, args_.alpha,
          args_.negative_only);
    }
    return out;
  }
  std::string name() const override {
    return "SugarReluBackwardBackward0";
  }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    grad_output_.reset_data();
    self_.reset_data();
  }
};

// Backward of _relu_double_backward: third order, not implemented.
struct SugarReluDoubleBackwardBackward : public TraceableFunction {
  variable_list apply(variable_list&& /*grads*/) override {
    TORCH_CHECK_NOT_IMPLEMENTED(false, kThirdOrder);
  }
  std::string name() const override {
    return "SugarReluDoubleBackwardBackward0";
  }
};

// The typed ops, for redispatching below autograd with the key set the dispatcher gave us.
const auto& relu_op() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sugar::relu", "")
          .typed<at::Tensor(const at::Tensor&, c10::string_view, std::optional<double>, bool)>();
  return op;
}

const auto& relu_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("sugar::relu_backward", "")
                             .typed<at::Tensor(
                                 const at::Tensor&, const at::Tensor&, c10::string_view,
                                 std::optional<double>, bool)>();
  return op;
}

const auto& relu_double_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("sugar::_relu_double_backward", "")
                             .typed<at::Tensor(
                                 const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 c10::string_view, std::optional<double>, bool)>();
  return op;
}

at::Tensor relu_autograd(
    c10::DispatchKeySet ks,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const bool requires_grad = torch::autograd::compute_requires_grad(self);
  const bool forward_grad = has_forward_grad(self);
  NodePtr<SugarReluBackward> grad_fn;
  if (requires_grad) {
    grad_fn = make_node<SugarReluBackward>();
    grad_fn->set_next_edges(torch::autograd::collect_next_edges(self));
  }
  at::Tensor result = [&] {
    at::AutoDispatchBelowADInplaceOrView guard;
    return relu_op().redispatch(
        ks & c10::after_autograd_keyset, self, surrogate, alpha, negative_only);
  }();
  if (grad_fn) {
    torch::autograd::set_history(result, grad_fn);
    grad_fn->self_ = SavedVariable(self, /*is_output=*/false);
    grad_fn->args_ = SurrogateArgs{std::string(surrogate), alpha, negative_only};
  }
  if (forward_grad) {
    // The tangent of y is self_t * d(self): relu_backward applied to the tangent (FGI form).
    const at::Tensor self_p = self._fw_primal(/*level=*/0);
    result._set_fw_grad(
        sugar::relu_backward(self._fw_grad(/*level=*/0), self_p, surrogate, alpha, negative_only),
        /*level=*/0, /*is_inplace_op=*/false);
  }
  return result;
}

at::Tensor relu_backward_autograd(
    c10::DispatchKeySet ks,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const bool requires_grad = torch::autograd::compute_requires_grad(grad_output, self);
  const bool grad_output_fw = has_forward_grad(grad_output);
  const bool self_fw = has_forward_grad(self);
  NodePtr<SugarReluBackwardBackward> grad_fn;
  if (requires_grad) {
    grad_fn = make_node<SugarReluBackwardBackward>();
    grad_fn->set_next_edges(torch::autograd::collect_next_edges(grad_output, self));
  }
  at::Tensor result = [&] {
    at::AutoDispatchBelowADInplaceOrView guard;
    return relu_backward_op().redispatch(
        ks & c10::after_autograd_keyset, grad_output, self, surrogate, alpha, negative_only);
  }();
  if (grad_fn) {
    torch::autograd::set_history(result, grad_fn);
    grad_fn->grad_output_ = SavedVariable(grad_output, /*is_output=*/false);
    grad_fn->self_ = SavedVariable(self, /*is_output=*/false);
    grad_fn->args_ = SurrogateArgs{std::string(surrogate), alpha, negative_only};
  }
  if (grad_output_fw || self_fw) {
    const at::Tensor self_p = self_fw ? self._fw_primal(0) : self;
    const at::Tensor grad_output_p = grad_output_fw ? grad_output._fw_primal(0) : grad_output;
    at::Tensor tangent;
    if (grad_output_fw) {
      tangent =
          sugar::relu_backward(grad_output._fw_grad(0), self_p, surrogate, alpha, negative_only);
    }
    if (self_fw) {
      at::Tensor part = sugar::_relu_double_backward(
          self._fw_grad(0), grad_output_p, self_p, surrogate, alpha, negative_only);
      tangent = tangent.defined() ? at::add(tangent, part) : part;
    }
    result._set_fw_grad(tangent, /*level=*/0, /*is_inplace_op=*/false);
  }
  return result;
}

at::Tensor relu_double_backward_autograd(
    c10::DispatchKeySet ks,
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      !(has_forward_grad(grad_grad) || has_forward_grad(grad_output) || has_forward_grad(self)),
      kThirdOrder);
  NodePtr<SugarReluDoubleBackwardBackward> grad_fn;
  if (torch::autograd::compute_requires_grad(grad_grad, grad_output, self)) {
    grad_fn = make_node<SugarReluDoubleBackwardBackward>();
    grad_fn->set_next_edges(torch::autograd::collect_next_edges(grad_grad, grad_output, self));
  }
  at::Tensor result = [&] {
    at::AutoDispatchBelowADInplaceOrView guard;
    return relu_double_backward_op().redispatch(
        ks & c10::after_autograd_keyset, grad_grad, grad_output, self, surrogate, alpha,
        negative_only);
  }();
  if (grad_fn) torch::autograd::set_history(result, grad_fn);
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, Autograd, m) {
  m.impl("relu", TORCH_FN(relu_autograd));
  m.impl("relu_backward", TORCH_FN(relu_backward_autograd));
  m.impl("_relu_double_backward", TORCH_FN(relu_double_backward_autograd));
}

}  // namespace sugar
