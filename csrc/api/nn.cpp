// sugar::nn::SugarReLU, compiled into the op library (so C++ programs get it by linking
// TorchSugar::TorchSugar, and its option checks are the ops' own).
#include <torch_sugar/nn.h>

#include "../ops/surrogate.h"

#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace sugar {
namespace nn {
namespace {

constexpr const char* kModuleName = "sugar::nn::SugarReLU";

c10::IValue read_entry(torch::serialize::InputArchive& archive, const char* key) {
  c10::IValue value;
  TORCH_CHECK_VALUE(
      archive.try_read(key, value), kModuleName, "::load: the archive has no entry '", key,
      "'; it was not written by SugarReLU::save (entries: surrogate, alpha, negative_only)");
  return value;
}

}  // namespace

SugarReLUImpl::SugarReLUImpl(SugarReLUOptions options_) : options(std::move(options_)) {
  reset();
}

void SugarReLUImpl::reset() {
  // The ops' own parser, with the module named in the message: a bad option fails here, when
  // the model is built, not at the first backward pass.
  parse_surrogate(kModuleName, options.surrogate(), options.alpha(), options.negative_only());
}

at::Tensor SugarReLUImpl::forward(const at::Tensor& input) {
  return sugar::relu(input, options.surrogate(), options.alpha(), options.negative_only());
}

void SugarReLUImpl::pretty_print(std::ostream& stream) const {
  stream << kModuleName << "(surrogate=" << options.surrogate();
  if (options.alpha().has_value()) {
    stream << ", alpha=" << format_double(*options.alpha());
  } else {
    for (const auto& s : surrogates()) {
      if (s.name == options.surrogate() && s.default_alpha.has_value()) {
        stream << ", alpha=" << format_double(*s.default_alpha) << " (default)";
      }
    }
  }
  stream << ", negative_only=" << (options.negative_only() ? "true" : "false") << ")";
}

void SugarReLUImpl::save(torch::serialize::OutputArchive& archive) const {
  torch::nn::Module::save(archive);
  archive.write("surrogate", c10::IValue(options.surrogate()));
  archive.write("alpha", c10::IValue(options.alpha()));
  archive.write("negative_only", c10::IValue(options.negative_only()));
}

void SugarReLUImpl::load(torch::serialize::InputArchive& archive) {
  torch::nn::Module::load(archive);
  const c10::IValue surrogate = read_entry(archive, "surrogate");
  const c10::IValue alpha = read_entry(archive, "alpha");
  const c10::IValue negative_only = read_entry(archive, "negative_only");
  TORCH_CHECK_VALUE(
      surrogate.isString() && (alpha.isNone() || alpha.isDouble()) && negative_only.isBool(),
      kModuleName, "::load: the archive's entries have the wrong types: surrogate is ",
      surrogate.tagKind(), " (want str), alpha is ", alpha.tagKind(),
      " (want None or float), "
      "negative_only is ",
      negative_only.tagKind(), " (want bool)");
  SugarReLUOptions loaded(surrogate.toStringRef());
  loaded.alpha(alpha.isNone() ? std::nullopt : std::optional<double>(alpha.toDouble()));
  loaded.negative_only(negative_only.toBool());
  // Validate before adopting, so a bad archive leaves the module as it was.
  parse_surrogate(kModuleName, loaded.surrogate(), loaded.alpha(), loaded.negative_only());
  options = std::move(loaded);
}

}  // namespace nn
}  // namespace sugar
