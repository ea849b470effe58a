// sugar::nn::SugarReLU: forward, gradients inside torch::nn::Sequential against a reference
// network, pretty_print, clone, torch::save/torch::load of its options, and option checks.
#include "catch.h"
#include "helpers.h"
#include "reference.h"

#include <torch/torch.h>
#include <torch_sugar/sugar.h>

#include <cstdio>
#include <sstream>
#include <string>

using namespace test_helpers;

namespace {

std::string printed(const torch::nn::Module& m) {
  std::ostringstream out;
  out << m;
  return out.str();
}

// A file name in the test's working directory (ctest runs each test in the build tree).
std::string temp_path(const std::string& name) {
  return "sugar_test_nn_" + name + ".pt";
}

// The reference activation by the stop-gradient trick (FGI): value relu(x), gradient d(x) taken
// from reference.h; used to build the same network without the library's op.
at::Tensor reference_activation(const at::Tensor& x, const reference::Surrogate& s) {
  at::Tensor d = reference::d(s, x.detach()).to(x.scalar_type());
  at::Tensor h = x * d;
  return h - h.detach() + at::relu(x).detach();
}

torch::nn::Sequential make_net(
    const sugar::nn::SugarReLUOptions& a,
    const sugar::nn::SugarReLUOptions& b) {
  return torch::nn::Sequential(
      torch::nn::Linear(4, 16), sugar::nn::SugarReLU(a), torch::nn::Linear(16, 16),
      sugar::nn::SugarReLU(b), torch::nn::Linear(16, 2));
}

}  // namespace

CATCH_TEST_CASE("SugarReLU: forward is relu, gradient is the surrogate's", "[nn]") {
  torch::manual_seed(0);
  sugar::nn::SugarReLU act(sugar::nn::SugarReLUOptions("nelu").alpha(0.05));
  at::Tensor x = torch::randn({7, 5}, at::kDouble).requires_grad_(true);
  at::Tensor v = torch::randn({7, 5}, at::kDouble);
  at::Tensor y = act(x);
  CATCH_CHECK(at::equal(y, at::relu(x)));
  y.backward(v);
  at::Tensor want = v * reference::d({"nelu", 0.05, false}, x.detach());
  CATCH_CHECK((x.grad() - want).abs().max().item<double>() <= 1e-12);
  CATCH_CHECK(act->parameters().empty());
  CATCH_CHECK(act->buffers().empty());
}

CATCH_TEST_CASE("SugarReLU inside torch::nn::Sequential matches a reference network", "[nn]") {
  torch::manual_seed(1);
  auto opt_a = sugar::nn::SugarReLUOptions("bsilu");
  auto opt_b = sugar::nn::SugarReLUOptions("elu").alpha(0.5).negative_only(true);
  auto net = make_net(opt_a, opt_b);
  net->to(at::kDouble);
  at::Tensor x = torch::randn({32, 4}, at::kDouble);
  at::Tensor target = torch::randn({32, 2}, at::kDouble);
  torch::mse_loss(net->forward(x), target).backward();

  // The same weights through the reference activation.
  auto lin = [&](int i) { return net[i]->as<torch::nn::Linear>(); };
  std::vector<at::Tensor> w, b;
  for (int i : {0, 2, 4}) {
    w.push_back(lin(i)->weight.detach().clone().requires_grad_(true));
    b.push_back(lin(i)->bias.detach().clone().requires_grad_(true));
  }
  at::Tensor h = reference_activation(at::linear(x, w[0], b[0]), {"bsilu", std::nullopt, false});
  h = reference_activation(at::linear(h, w[1], b[1]), {"elu", 0.5, true});
  torch::mse_loss(at::linear(h, w[2], b[2]), target).backward();

  for (int k = 0; k < 3; ++k) {
    CATCH_INFO("linear layer " << k);
    CATCH_CHECK((lin(2 * k)->weight.grad() - w[k].grad()).abs().max().item<double>() <= 1e-12);
    CATCH_CHECK((lin(2 * k)->bias.grad() - b[k].grad()).abs().max().item<double>() <= 1e-12);
  }
  // And the surrogate matters here: plain relu would give a clearly different gradient.
  at::Tensor w0 = w[0].detach().clone().requires_grad_(true);
  at::Tensor hr = at::relu(
      at::linear(at::relu(at::linear(x, w0, b[0].detach())), w[1].detach(), b[1].detach()));
  torch::mse_loss(at::linear(hr, w[2].detach(), b[2].detach()), target).backward();
  CATCH_CHECK((w0.grad() - lin(0)->weight.grad()).abs().max().item<double>() > 1e-3);
}

CATCH_TEST_CASE("SugarReLU prints its options", "[nn]") {
  CATCH_CHECK(
      printed(*sugar::nn::SugarReLU()) ==
      "sugar::nn::SugarReLU(surrogate=bsilu, alpha=1.67 (default), negative_only=false)");
  CATCH_CHECK(
      printed(*sugar::nn::SugarReLU(
          sugar::nn::SugarReLUOptions("nelu").alpha(0.05).negative_only(true))) ==
      "sugar::nn::SugarReLU(surrogate=nelu, alpha=0.05, negative_only=true)");
  CATCH_CHECK(
      printed(*sugar::nn::SugarReLU("gelu")) ==
      "sugar::nn::SugarReLU(surrogate=gelu, negative_only=false)");
  auto net = make_net({"mish"}, {"selu"});
  const std::string text = printed(*net);
  CATCH_CHECK(contains(text, "(1): sugar::nn::SugarReLU(surrogate=mish, negative_only=false)"));
  CATCH_CHECK(contains(text, "(3): sugar::nn::SugarReLU(surrogate=selu, negative_only=false)"));
}

CATCH_TEST_CASE("SugarReLU validates its options when it is built", "[nn]") {
  using sugar::nn::SugarReLU;
  using sugar::nn::SugarReLUOptions;
  CATCH_CHECK_THROWS_AS(SugarReLU(SugarReLUOptions("sigmoid")), c10::ValueError);
  CATCH_CHECK(contains(
      error_of([] { SugarReLU(SugarReLUOptions("sigmoid")); }),
      "sugar::nn::SugarReLU: unknown surrogate 'sigmoid'; valid names are: relu, bsilu"));
  CATCH_CHECK(contains(
      error_of([] { SugarReLU(SugarReLUOptions("silu").alpha(1.0)); }),
      "sugar::nn::SugarReLU: surrogate 'silu' takes no alpha, but alpha=1.0 was given"));
  CATCH_CHECK(contains(
      error_of([] { SugarReLU(SugarReLUOptions("leaky_relu").alpha(0.0)); }),
      "sugar::nn::SugarReLU: alpha for surrogate 'leaky_relu' must be a number in (0, 1], "
      "but got alpha=0"));
  // Options changed after construction are checked again by reset().
  SugarReLU act;
  act->options.surrogate("nope");
  CATCH_CHECK_THROWS_AS(act->reset(), c10::ValueError);
}

CATCH_TEST_CASE("SugarReLU clone() keeps the options", "[nn]") {
  auto net = make_net(sugar::nn::SugarReLUOptions("nelu").alpha(0.1), {"gelu_tanh"});
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone());
  CATCH_REQUIRE(copy);
  CATCH_CHECK(printed(*copy) == printed(*net));
  auto act = (*copy)[1]->as<sugar::nn::SugarReLU>();
  CATCH_REQUIRE(act != nullptr);
  CATCH_CHECK(act->options.surrogate() == "nelu");
  CATCH_CHECK(act->options.alpha() == std::optional<double>(0.1));
}

CATCH_TEST_CASE("torch::save / torch::load round-trip the options and the weights", "[nn]") {
  torch::manual_seed(2);
  auto saved = make_net(
      sugar::nn::SugarReLUOptions("nelu").alpha(0.05).negative_only(true),
      sugar::nn::SugarReLUOptions("leaky_relu"));
  const std::string path = temp_path("roundtrip");
  torch::save(saved, path);

  // Loaded into a network built with default options: the file's options win.
  auto loaded = make_net({}, {});
  torch::load(loaded, path);
  std::remove(path.c_str());
  CATCH_CHECK(printed(*loaded) == printed(*saved));
  auto a = loaded[1]->as<sugar::nn::SugarReLU>();
  auto b = loaded[3]->as<sugar::nn::SugarReLU>();
  CATCH_CHECK(a->options.surrogate() == "nelu");
  CATCH_CHECK(a->options.alpha() == std::optional<double>(0.05));
  CATCH_CHECK(a->options.negative_only());
  CATCH_CHECK(b->options.surrogate() == "leaky_relu");
  CATCH_CHECK(!b->options.alpha().has_value());
  CATCH_CHECK(!b->options.negative_only());

  // Same function, same gradients.
  at::Tensor x = torch::randn({8, 4});
  at::Tensor xs = x.clone().requires_grad_(true), xl = x.clone().requires_grad_(true);
  saved->forward(xs).sum().backward();
  loaded->forward(xl).sum().backward();
  CATCH_CHECK(at::equal(xs.grad(), xl.grad()));

  // A single module too, through its holder.
  sugar::nn::SugarReLU one(sugar::nn::SugarReLUOptions("bsilu").alpha(2.5));
  const std::string one_path = temp_path("one");
  torch::save(one, one_path);
  sugar::nn::SugarReLU back;
  torch::load(back, one_path);
  std::remove(one_path.c_str());
  CATCH_CHECK(back->options.alpha() == std::optional<double>(2.5));
}

CATCH_TEST_CASE("loading a SugarReLU from a file it did not write fails clearly", "[nn]") {
  torch::nn::Sequential relu_net(
      torch::nn::Linear(4, 16), torch::nn::ReLU(), torch::nn::Linear(16, 16), torch::nn::ReLU(),
      torch::nn::Linear(16, 2));
  const std::string path = temp_path("plain_relu");
  torch::save(relu_net, path);
  auto net = make_net({"nelu"}, {"nelu"});
  const std::string message = error_of([&] { torch::load(net, path); });
  std::remove(path.c_str());
  CATCH_CHECK(
      contains(message, "sugar::nn::SugarReLU::load: the archive has no entry 'surrogate'"));
  // The failed load left the options as they were.
  CATCH_CHECK(net[1]->as<sugar::nn::SugarReLU>()->options.surrogate() == "nelu");
}
