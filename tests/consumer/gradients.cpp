// Gradients of sugar::relu and of sugar::nn::SugarReLU for every case in the file Python wrote
// (make_reference.py), compared with Python's numbers.
//
//   gradients grads.txt
//
// Each case: "<surrogate> <alpha|none> <negative_only 0|1> <n>" then three lines of n numbers:
// x, the incoming gradient v, and Python's gradient of relu(x) with respect to x, given v.
#include <torch/torch.h>
#include <torch_sugar/sugar.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace {

at::Tensor read_row(std::istream& in, int64_t n) {
  std::vector<double> values(n);
  for (auto& v : values) in >> v;
  return torch::tensor(values, torch::kDouble);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s grads.txt\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  std::string name, alpha_text;
  int negative_only = 0;
  int64_t n = 0;
  int cases = 0, failures = 0;
  while (in >> name >> alpha_text >> negative_only >> n) {
    const std::optional<double> alpha =
        alpha_text == "none" ? std::nullopt : std::optional<double>(std::stod(alpha_text));
    at::Tensor x0 = read_row(in, n), v = read_row(in, n), want = read_row(in, n);
    if (!in) break;

    at::Tensor x = x0.clone().requires_grad_(true);
    sugar::relu(x, name, alpha, negative_only != 0).backward(v);

    sugar::nn::SugarReLU act(
        sugar::nn::SugarReLUOptions(name).alpha(alpha).negative_only(negative_only != 0));
    at::Tensor xm = x0.clone().requires_grad_(true);
    act(xm).backward(v);

    const double scale = 1 + want.abs().max().item<double>();
    const double err = (x.grad() - want).abs().max().item<double>();
    const double err_module = (xm.grad() - want).abs().max().item<double>();
    const bool ok = err <= 1e-12 * scale && err_module <= 1e-12 * scale;
    std::printf(
        "%-10s alpha=%-5s negative_only=%d  max|grad - python| = %.3g (sugar::relu), %.3g "
        "(SugarReLU)%s\n",
        name.c_str(), alpha_text.c_str(), negative_only, err, err_module, ok ? "" : "  MISMATCH");
    ++cases;
    failures += ok ? 0 : 1;
  }
  if (cases == 0) {
    std::fprintf(stderr, "%s: no cases read from %s\n", argv[0], argv[1]);
    return 1;
  }
  std::printf("%d cases, %d mismatches\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
