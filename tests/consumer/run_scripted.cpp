// Runs a TorchScript model that Python scripted with the sugar ops, forward and backward, and
// compares with Python's output and input gradient. Includes no torch-sugar header and calls no
// torch-sugar function: the ops are there only because the program links TorchSugar::TorchSugar.
//
//   run_scripted model.pt model_reference.pt
#include <torch/script.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s model.pt model_reference.pt\n", argv[0]);
    return 2;
  }
  try {
    torch::jit::Module model = torch::jit::load(argv[1]);
    torch::jit::Module ref = torch::jit::load(argv[2]);
    at::Tensor x = ref.attr("x").toTensor().clone().requires_grad_(true);
    at::Tensor out = model.forward({x}).toTensor();
    (out * ref.attr("v").toTensor()).sum().backward();
    const double err_out = (out - ref.attr("out").toTensor()).abs().max().item<double>();
    const double err_grad = (x.grad() - ref.attr("grad_x").toTensor()).abs().max().item<double>();
    std::printf(
        "scripted model: max|out - python| = %.3g, max|grad_x - python| = %.3g\n", err_out,
        err_grad);
    return err_out <= 1e-12 && err_grad <= 1e-12 ? 0 : 1;
  } catch (
      const std::exception& e) {  // "Unknown builtin op: sugar::relu" if the library is not linked
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
