// Trains a small MLP with SugarReLU activations on synthetic data, all in C++ (no Python), and
// prints the loss of every epoch.
//
//   train_mlp [surrogate] [epochs]      (defaults: bsilu, 30)
//
// The data: 2-D points, label 1 inside a ring (0.5 < |x| < 1.2), 0 outside; a problem no linear
// model solves. The network starts with biases shifted down so that many hidden units begin
// dead (pre-activation <= 0 for every input), which is where SUGAR's surrogate gradient helps.
#include <torch/torch.h>
#include <torch_sugar/sugar.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  const std::string surrogate = argc > 1 ? argv[1] : "bsilu";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 30;
  torch::manual_seed(0);

  // Synthetic data: 2048 training points, 512 held out.
  auto make_data = [](int64_t n) {
    at::Tensor x = torch::rand({n, 2}) * 3 - 1.5;
    at::Tensor r = x.norm(2, 1);
    at::Tensor y = ((r > 0.5) & (r < 1.2)).to(torch::kFloat).unsqueeze(1);
    return std::make_pair(x, y);
  };
  auto [x_train, y_train] = make_data(2048);
  auto [x_test, y_test] = make_data(512);

  sugar::nn::SugarReLUOptions act(surrogate);
  torch::nn::Sequential net(
      torch::nn::Linear(2, 64), sugar::nn::SugarReLU(act), torch::nn::Linear(64, 64),
      sugar::nn::SugarReLU(act), torch::nn::Linear(64, 1));
  {
    torch::NoGradGuard no_grad;
    for (int i : {0, 2}) net[i]->as<torch::nn::Linear>()->bias.sub_(0.5);
  }
  std::cout << net << "\n";

  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(3e-3));
  const int64_t batch = 128;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    net->train();
    at::Tensor order = torch::randperm(x_train.size(0));
    double total = 0;
    for (int64_t start = 0; start < x_train.size(0); start += batch) {
      at::Tensor idx = order.slice(0, start, start + batch);
      optimizer.zero_grad();
      at::Tensor loss = torch::binary_cross_entropy_with_logits(
          net->forward(x_train.index_select(0, idx)), y_train.index_select(0, idx));
      loss.backward();
      optimizer.step();
      total += loss.item<double>() * idx.size(0);
    }
    net->eval();
    torch::NoGradGuard no_grad;
    at::Tensor logits = net->forward(x_test);
    const double accuracy =
        ((logits > 0).to(torch::kFloat) == y_test).to(torch::kFloat).mean().item<double>();
    std::printf(
        "epoch %3d  loss %.6f  test accuracy %.3f\n", epoch, total / x_train.size(0), accuracy);
  }
  return 0;
}
