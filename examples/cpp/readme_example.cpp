#include <torch/torch.h>
#include <torch_sugar/sugar.h>

int main() {
  torch::nn::Sequential net(
      torch::nn::Linear(4, 32), sugar::nn::SugarReLU("bsilu"), torch::nn::Linear(32, 1));
  torch::optim::Adam opt(net->parameters(), 1e-3);
  auto x = torch::randn({64, 4}), y = x.sum(1, true).sin();
  for (int step = 0; step < 100; ++step) {
    opt.zero_grad();
    auto loss = torch::mse_loss(net->forward(x), y);
    loss.backward();  // forward: ReLU; backward: the derivative of B-SiLU
    opt.step();
  }
  // ... (1): sugar::nn::SugarReLU(surrogate=bsilu, alpha=1.67 (default), negative_only=false)
  std::cout << net << "\n";
}
