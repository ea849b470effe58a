#include "surrogate.h"

#include <c10/util/Exception.h>

#include <charconv>
#include <cmath>
#include <string>

namespace sugar {
namespace {

struct AlphaRule {
  double low;        // alpha must be >= low (or > low when low_open)
  bool low_open;
  double high;       // alpha must be <= high
  const char* words; // the rule in words, for the table and error messages
};

struct Entry {
  const char* name;
  math::Surrogate kind;
  bool takes_alpha;
  double default_alpha;
  AlphaRule rule;
  const char* description;
  const char* alias_of;
};

constexpr double kInf = HUGE_VAL;

// The order here is the order of surrogates() and of the "valid names" in error messages.
const Entry kEntries[] = {
    {"relu", math::Surrogate::relu, false, 0.0, {0, false, 0, ""},
     "control: the exact gradient of torch.relu (1 for x > 0, else 0)", ""},
    {"bsilu", math::Surrogate::bsilu, true, 1.67, {0.0, false, kInf, "a finite number >= 0"},
     "B-SiLU (x + a) * sigmoid(x) - a/2, the paper's main surrogate", ""},
    {"nelu", math::Surrogate::nelu, true, 0.01, {0.0, true, kInf, "a finite number > 0"},
     "NeLU: x for x > 0, -a / (1 + x^2) for x <= 0 (paper swept a = 0.01, 0.05, 0.1)", ""},
    {"elu", math::Surrogate::elu, true, 1.0, {0.0, true, kInf, "a finite number > 0"},
     "ELU: x for x > 0, a (e^x - 1) for x <= 0", ""},
    {"selu", math::Surrogate::selu, false, 0.0, {0, false, 0, ""},
     "SELU: lambda * ELU with the fixed self-normalizing constants", ""},
    {"leaky_relu", math::Surrogate::leaky_relu, true, 0.01, {0.0, true, 1.0, "a number in (0, 1]"},
     "LeakyReLU: slope 1 for x > 0, slope a for x <= 0", ""},
    {"gelu", math::Surrogate::gelu, false, 0.0, {0, false, 0, ""},
     "GELU: x * Phi(x), exact (erf) form", ""},
    {"gelu_tanh", math::Surrogate::gelu_tanh, false, 0.0, {0, false, 0, ""},
     "GELU, tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", ""},
    {"silu", math::Surrogate::silu, false, 0.0, {0, false, 0, ""},
     "SiLU / Swish: x * sigmoid(x)", ""},
    {"swish", math::Surrogate::silu, false, 0.0, {0, false, 0, ""},
     "alias of silu", "silu"},
    {"mish", math::Surrogate::mish, false, 0.0, {0, false, 0, ""},
     "Mish: x * tanh(softplus(x))", ""},
};

std::string valid_names() {
  std::string out;
  for (const auto& e : kEntries) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

// As Python's repr writes a float: the shortest text that reads back as v ("0.1", not
// "0.10000000000000001"), with ".0" on whole numbers ("0.0", "-1.0").
std::string format_double(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  std::string out(buf, res.ptr);
  if (out.find_first_of(".ein") == std::string::npos) out += ".0";
  return out;
}

}  // namespace

SurrogateSpec parse_surrogate(
    const char* op,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  const Entry* entry = nullptr;
  for (const auto& e : kEntries) {
    if (surrogate == e.name) {
      entry = &e;
      break;
    }
  }
  TORCH_CHECK_VALUE(
      entry != nullptr, op, ": unknown surrogate '", std::string(surrogate),
      "'; valid names are: ", valid_names());

  SurrogateSpec spec{entry->kind, 0.0, negative_only};
  if (!entry->takes_alpha) {
    TORCH_CHECK_VALUE(
        !alpha.has_value(), op, ": surrogate '", entry->name,
        "' takes no alpha, but alpha=", format_double(alpha.value_or(0.0)),
        " was given; pass alpha=None (surrogates with an alpha: bsilu, nelu, elu, leaky_relu)");
    return spec;
  }
  const double a = alpha.value_or(entry->default_alpha);
  const auto& r = entry->rule;
  const bool ok = std::isfinite(a) && (r.low_open ? a > r.low : a >= r.low) && a <= r.high;
  TORCH_CHECK_VALUE(
      ok, op, ": alpha for surrogate '", entry->name, "' must be ", r.words, ", but got alpha=",
      format_double(a), " (default ", format_double(entry->default_alpha), ")");
  spec.alpha = a;
  return spec;
}

const std::vector<SurrogateInfo>& surrogates() {
  static const std::vector<SurrogateInfo> table = [] {
    std::vector<SurrogateInfo> rows;
    for (const auto& e : kEntries) {
      SurrogateInfo info;
      info.name = e.name;
      if (e.takes_alpha) info.default_alpha = e.default_alpha;
      info.alpha_range = e.rule.words;
      info.description = e.description;
      info.alias_of = e.alias_of;
      rows.push_back(std::move(info));
    }
    return rows;
  }();
  return table;
}

}  // namespace sugar
