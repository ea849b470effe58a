// sugar::nn::SugarReLU: a torch::nn module for LibTorch programs (part of <torch_sugar/sugar.h>).
//
//   auto net = torch::nn::Sequential(
//       torch::nn::Linear(4, 16),
//       sugar::nn::SugarReLU(sugar::nn::SugarReLUOptions("nelu").alpha(0.05)),
//       torch::nn::Linear(16, 1));
//
// Forward is torch.relu; backward multiplies the gradient by the surrogate's derivative. The
// options are validated when the module is built (reset()), and saved with it: torch::save /
// torch::load round-trip them next to the parameters of the surrounding model.
#pragma once

#include <torch_sugar/ops.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/serialize/archive.h>

#include <optional>
#include <ostream>
#include <string>

namespace sugar {
namespace nn {

// Options of SugarReLU, in the builder style of torch::nn's options:
//   SugarReLUOptions("bsilu").alpha(1.67).negative_only(true)
struct SUGAR_API SugarReLUOptions {
  /* implicit */ SugarReLUOptions(std::string surrogate = "bsilu")
      : surrogate_(std::move(surrogate)) {}
  /* implicit */ SugarReLUOptions(const char* surrogate) : surrogate_(surrogate) {}

  // The surrogate's name: one of sugar::surrogates() (bsilu, nelu, elu, selu, leaky_relu, gelu,
  // gelu_tanh, silu, swish, mish; "relu" is the control, exactly torch.relu's gradient).
  TORCH_ARG(std::string, surrogate);
  // The surrogate's parameter (bsilu, nelu, elu, leaky_relu); nullopt for its default.
  TORCH_ARG(std::optional<double>, alpha) = std::nullopt;
  // Use the surrogate's derivative only where x <= 0; pass the gradient unchanged where x > 0.
  TORCH_ARG(bool, negative_only) = false;
};

// ReLU in the forward pass, the derivative of a smooth surrogate in the backward pass: a drop-in
// for torch::nn::ReLU. No parameters or buffers; save()/load() carry the options.
class SUGAR_API SugarReLUImpl : public torch::nn::Cloneable<SugarReLUImpl> {
 public:
  explicit SugarReLUImpl(SugarReLUOptions options_ = {});

  at::Tensor forward(const at::Tensor& input);

  // Validates the options; throws c10::Error (a c10::ValueError) naming the bad one.
  void reset() override;

  // sugar::nn::SugarReLU(surrogate=bsilu, alpha=1.67 (default), negative_only=false)
  void pretty_print(std::ostream& stream) const override;

  // The options are written as the archive entries "surrogate", "alpha" (None for the default)
  // and "negative_only"; load() reads them back and validates them.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // The options with which this module was built (or loaded).
  SugarReLUOptions options;
};

// The module holder: sugar::nn::SugarReLU(...) is a std::shared_ptr<SugarReLUImpl> in disguise.
TORCH_MODULE(SugarReLU);

}  // namespace nn
}  // namespace sugar
