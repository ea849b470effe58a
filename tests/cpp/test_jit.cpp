// A model scripted and saved by Python (make_fixtures.py), loaded with torch::jit::load and
// trained one step in C++: output, loss, gradients and the stepped parameters equal Python's.
#include "catch.h"
#include "helpers.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

using namespace test_helpers;

namespace {

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("SUGAR_FIXTURES");
  if (dir == nullptr) {
    CATCH_FAIL(
        "SUGAR_FIXTURES is not set: run these tests through ctest, which writes the fixtures "
        "first");
  }
  return std::string(dir) + "/" + name;
}

std::string attr_name(std::string name) {
  for (auto& c : name) c = c == '.' ? '_' : c;
  return name;
}

}  // namespace

CATCH_TEST_CASE("a Python-scripted model with sugar ops trains one step in C++", "[jit]") {
  torch::jit::Module model = torch::jit::load(fixture("mlp.pt"));
  torch::jit::Module ref = torch::jit::load(fixture("mlp_reference.pt"));
  auto get = [&](const std::string& name) { return ref.attr(name).toTensor(); };
  const double lr = get("lr").item<double>();

  model.train();
  at::Tensor out = model.forward({get("x")}).toTensor();
  CATCH_CHECK(max_abs_diff(out, get("out")) <= 1e-12);
  at::Tensor loss = torch::mse_loss(out, get("y"));
  CATCH_CHECK(std::abs(loss.item<double>() - get("loss").item<double>()) <= 1e-12);

  std::vector<at::Tensor> params;
  for (const auto& p : model.parameters()) params.push_back(p);
  CATCH_REQUIRE(params.size() == 6);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(lr));
  sgd.zero_grad();
  loss.backward();
  for (const auto& p : model.named_parameters()) {
    CATCH_INFO(p.name);
    CATCH_REQUIRE(p.value.grad().defined());
    CATCH_CHECK(max_abs_diff(p.value.grad(), get("grad_" + attr_name(p.name))) <= 1e-12);
  }
  sgd.step();
  for (const auto& p : model.named_parameters()) {
    CATCH_INFO(p.name);
    CATCH_CHECK(max_abs_diff(p.value, get("stepped_" + attr_name(p.name))) <= 1e-12);
  }
  torch::NoGradGuard no_grad;
  at::Tensor loss_after = torch::mse_loss(model.forward({get("x")}).toTensor(), get("y"));
  CATCH_CHECK(std::abs(loss_after.item<double>() - get("loss_after").item<double>()) <= 1e-12);
  CATCH_CHECK(loss_after.item<double>() < loss.item<double>());
}
