// CPU-only builds: a clear error for CUDA tensors, the one place that says so.
//
// Without CUDA kernels the dispatcher's own message ("Could not run 'sugar::relu' with arguments
// from the 'CUDA' backend ...") does not say that this build simply lacks them, nor how to get
// them. These kernels are registered for the CUDA key itself, so every caller meets them: eager
// Python with or without autograd (torch.inference_mode skips the autograd keys), TorchScript
// and C++ programs. Whether a build really has CUDA kernels is build_info()["cuda_compiled"]
// (torch_sugar._C.cuda_compiled), not the dispatcher's table.
//
// Builds with CUDA kernels (SUGAR_WITH_CUDA) compile this file to nothing.
#ifndef SUGAR_WITH_CUDA

#include "relu.h"

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

at::Tensor relu_no_cuda(const at::Tensor& self, c10::string_view, std::optional<double>, bool) {
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

TORCH_LIBRARY_IMPL(sugar, CUDA, m) {
  m.impl("relu", &relu_no_cuda);
  m.impl("relu_backward", &relu_backward_no_cuda);
  m.impl("_relu_double_backward", &relu_double_backward_no_cuda);
}

}  // namespace sugar

#endif  // SUGAR_WITH_CUDA
