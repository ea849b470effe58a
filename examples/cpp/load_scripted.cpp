// Loads a TorchScript model that calls the sugar ops (scripted and saved by Python, e.g. a model
// with torch_sugar.SugarReLU layers), runs inference, then trains it for one step, in C++.
//
//   load_scripted model.pt
//
// The program never calls a torch-sugar function: linking TorchSugar::TorchSugar is what makes
// torch::jit::load find the ops sugar::relu and sugar::relu_backward.
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s model.pt\n", argv[0]);
    return 2;
  }
  torch::jit::Module model;
  try {
    model = torch::jit::load(argv[1]);
  } catch (const std::exception& e) {  // c10::Error, or torch::jit::ErrorReport for unknown ops
    std::fprintf(stderr, "cannot load %s: %s\n", argv[1], e.what());
    return 1;
  }

  // Inputs of the model's width and dtype (read from its first parameter).
  std::vector<at::Tensor> params;
  for (const auto& p : model.parameters()) params.push_back(p);
  if (params.empty() || params[0].dim() != 2) {
    std::fprintf(
        stderr, "%s: expected a model whose first parameter is a Linear weight\n", argv[1]);
    return 1;
  }
  const auto options = params[0].options().requires_grad(false);
  torch::manual_seed(0);
  at::Tensor x = torch::randn({32, params[0].size(1)}, options);

  // Inference.
  model.eval();
  {
    torch::NoGradGuard no_grad;
    at::Tensor y = model.forward({x}).toTensor();
    std::cout << "inference: output " << y.sizes() << ", first rows\n" << y.slice(0, 0, 4) << "\n";
  }

  // One training step towards a synthetic target.
  model.train();
  at::Tensor target = torch::sin(x.sum(1, /*keepdim=*/true));
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.1));
  sgd.zero_grad();
  at::Tensor loss = torch::mse_loss(model.forward({x}).toTensor(), target);
  loss.backward();
  sgd.step();
  torch::NoGradGuard no_grad;
  const double after = torch::mse_loss(model.forward({x}).toTensor(), target).item<double>();
  std::printf("loss before step: %.6f\nloss after step: %.6f\n", loss.item<double>(), after);
  return 0;
}
