// CPU-only builds: a clear error for CUDA tensors.
//
// Without CUDA kernels the dispatcher's own message ("Could not run 'sugar::relu' with arguments
// from the 'CUDA' backend ...") does not say that this build simply lacks them, nor how to get
// them. Registering an erroring kernel under the CUDA key would make the build look CUDA-capable
// (torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA") would be true), so the check sits
// one level up, under AutogradCUDA, which every call with CUDA tensors passes through unless
// autograd is bypassed (torch.inference_mode, or a caller already below autograd); those calls
// still get the dispatcher's message. The AutogradCUDA kernels take precedence over the generic
// Autograd kernels (autograd/relu_kernel.cpp) for CUDA tensors only; CPU calls are unaffected.
//
// Builds with CUDA kernels (SUGAR_WITH_CUDA) compile this file to nothing.
#ifndef SUGAR_WITH_CUDA

#include "../relu.h"

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <torch/library.h>

#include <initializer_list>

namespace sugar {
namespace {

// Names the device of the first CUDA tensor among the arguments (a mixed CPU/CUDA call also lands
// here, dispatched on its CUDA tensor).
[[noreturn]] void fail_no_cuda(const char* op, std::initializer_list<const at::Tensor*> args) {
  c10::Device device = c10::Device(c10::kCUDA);
  for (const at::Tensor* t : args) {
    if (t->defined() && t->is_cuda()) {
      device = t->device();
      break;
    }
  }
  C10_THROW_ERROR(
      NotImplementedError,
      c10::str(
          op, ": got a tensor on ", device,
          ", but this build of torch-sugar has no CUDA kernels: it was built CPU-only "
          "(SUGAR_CUDA=0, or a CPU-only torch, or no CUDA toolkit found at build time). To run on "
          "the GPU, rebuild it with CUDA: with a CUDA build of torch and the CUDA toolkit (nvcc) "
          "installed, run `SUGAR_CUDA=1 pip install --no-build-isolation -e .` in the torch-sugar "
          "checkout (TORCH_CUDA_ARCH_LIST selects the GPU architectures; see the README, "
          "\"Building with CUDA\"). torch_sugar.build_info() shows what this build has."));
}

at::Tensor relu_no_cuda(
    const at::Tensor& self,
    c10::string_view,
    std::optional<double>,
    bool) {
  fail_no_cuda(kReluName, {&self});
}

at::Tensor relu_backward_no_cuda(
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view,
    std::optional<double>,
    bool) {
  fail_no_cuda(kReluBackwardName, {&grad_output, &self});
}

at::Tensor relu_double_backward_no_cuda(
    const at::Tensor& grad_grad,
    const at::Tensor& grad_output,
    const at::Tensor& self,
    c10::string_view,
    std::optional<double>,
    bool) {
  fail_no_cuda(kReluDoubleBackwardName, {&grad_grad, &grad_output, &self});
}

}  // namespace

TORCH_LIBRARY_IMPL(sugar, AutogradCUDA, m) {
  m.impl("relu", &relu_no_cuda);
  m.impl("relu_backward", &relu_backward_no_cuda);
  m.impl("_relu_double_backward", &relu_double_backward_no_cuda);
}

}  // namespace sugar

#endif  // SUGAR_WITH_CUDA
