// torch-sugar's op functions for LibTorch programs (part of <torch_sugar/sugar.h>; this header
// alone is the light one: ATen only, no torch::nn).
//
//   #include <torch_sugar/sugar.h>
//   at::Tensor y = sugar::relu(x, "bsilu");  // forward: relu(x); backward: B-SiLU's derivative
//
// Every call goes through the dispatcher (ops `sugar::relu` and `sugar::relu_backward`), so
// autograd, the CPU and CUDA kernels and TorchScript all see the same operator.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <vector>

// The library is built with hidden symbol visibility; SUGAR_API marks the public entry points.
#ifndef SUGAR_API
#if defined(_WIN32)
#define SUGAR_API
#else
#define SUGAR_API __attribute__((visibility("default")))
#endif
#endif

namespace sugar {

// y = relu(x); in backward, grad_x = grad_y * s'(x) for the chosen surrogate s (all x), or only
// for x <= 0 with negative_only (grad passes unchanged where x > 0). alpha: the surrogate's
// parameter, nullopt for its default. Throws c10::Error (ValueError/TypeError subclasses) on bad
// arguments.
SUGAR_API at::Tensor relu(
    const at::Tensor& self,
    c10::string_view surrogate = "bsilu",
    std::optional<double> alpha = std::nullopt,
    bool negative_only = false);

// grad_output * d(self): the gradient of sugar::relu, itself differentiable (second order).
SUGAR_API at::Tensor relu_backward(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);

// One row of the surrogate table.
struct SurrogateInfo {
  std::string name;                     // as accepted by relu(..., surrogate=name)
  std::optional<double> default_alpha;  // nullopt: takes no alpha
  std::string alpha_range;              // what alpha may be, in words ("" if it takes none)
  std::string description;              // one line
  std::string alias_of;                 // "" unless the name is an alias ("swish" -> "silu")
};

// Every surrogate name the ops accept, in a stable order.
SUGAR_API const std::vector<SurrogateInfo>& surrogates();

}  // namespace sugar
