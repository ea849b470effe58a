// Internal declarations shared by the op's backends: argument checks, and the private
// double-backward op. The public API is include/torch_sugar/sugar.h.
#pragma once

#include "surrogate.h"

#include <ATen/core/Tensor.h>

#include <string>

namespace sugar {

// The op names used in error messages.
constexpr const char* kReluName = "sugar::relu";
constexpr const char* kReluBackwardName = "sugar::relu_backward";
constexpr const char* kReluDoubleBackwardName = "sugar::_relu_double_backward";

// Throws c10::TypeError unless `t` is float16, bfloat16, float32 or float64.
void check_floating(const char* op, const char* arg, const at::Tensor& t);

// Throws c10::ValueError unless `t` has `ref`'s shape, dtype and device.
void check_like(
    const char* op,
    const char* arg,
    const at::Tensor& t,
    const char* ref_arg,
    const at::Tensor& ref);

// Every backend's (CPU, CUDA, Meta) argument checks of the three ops, in one place: dtypes,
// shapes and devices, the surrogate name and alpha. Each returns the validated surrogate.
SurrogateSpec check_relu_args(
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);
SurrogateSpec check_relu_backward_args(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);
SurrogateSpec check_relu_double_backward_args(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);

// grad_grad * grad_output * s''(self): the self-part of relu_backward's own backward.
at::Tensor _relu_double_backward(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);

namespace cpu {
// "default", "avx2" or "avx512": the CPU kernels in use (the private op sugar::_cpu_capability);
// defined in cpu/capability.cpp.
std::string cpu_capability_name();
}  // namespace cpu

}  // namespace sugar
