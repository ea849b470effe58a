#include "surrogate.h"

#include <c10/util/Exception.h>

#include <charconv>
#include <cmath>
#include <string>

namespace sugar {
namespace {

struct AlphaRule {
  double low;  // alpha must be >= low (or > low when low_open)
  bool low_open;
  double high;        // alpha must be <= high
  const char* words;  // the rule in words, for the table and error messages
  const char* why;    // where `high` comes from, for error messages ("" if it is the math's own)
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

// ---- the largest alphas: d(x) and s''(x) finite for every finite x, in every dtype ----
//
// float16, bfloat16 and float32 inputs compute in float with alpha rounded to float; float64 in
// double. An alpha valid in float is far inside double's range for every bound below, so float
// sets them, evaluated as surrogate_math.h writes the formulas (F = FLT_MAX ~ 3.4028e38; x any
// finite float, so |x| <= F). Each bound is a round number below the exact limit, so that rounding
// alpha to float (relative error 2^-24) cannot carry it over. (The result grad * d(x) of a 16-bit
// dtype can still round to inf, as any gradient can: d(0) of bsilu at alpha = 1e30 is 2.5e29.)
//
// bsilu: d = sigma + (x + a) sigma sigma(-x); s'' = 2 sigma sigma(-x) + ((x + a) sigma sigma(-x))
//   (sigma(-x) - sigma). With sigma sigma(-x) <= 1/4 and |sigma(-x) - sigma| <= 1 both are finite
//   as long as x + a is: at x = F that needs a < half an ulp of F = 2^103 ~ 1.014e31 (else x + a
//   rounds to inf, and inf * sigma(x)sigma(-x) = inf * 0 = NaN). Bound: a <= 1e30.
//   (relu_backward(ones, [FLT_MAX], "bsilu", 1.1e31) was NaN.)
// nelu: with u = 1/(1 + x^2), d = ((2a)(x u)) u and s'' = ((2a)(4u - 3)) u u. |x u| <= 1/2, so d
//   needs 2a <= F; 4u - 3 lies in [-3, 1], so s'' needs 6a <= F, i.e. a <= F/6 ~ 5.67e37 (else
//   (2a)(4u - 3) is -inf, and -inf * u * u is -inf, or NaN where u = 0). Bound: a <= 5e37.
//   (relu_backward(ones, [0, -1], "nelu", 3e38) was [nan, -inf]: 2a = inf.)
// elu: d = s'' = a e^-|x| <= a (x <= 0; the discarded x > 0 branch too), and a itself at x = 0,
//   so a must be finite in float: a <= F. Bound: a <= 3e38 (an alpha of 1e39 was inf in float:
//   inf * e^x gave inf, and NaN where e^x = 0).
// leaky_relu: d is 1 or a, s'' = 0; the slope's own range (0, 1].
constexpr double kBsiluMaxAlpha = 1e30;
constexpr double kNeluMaxAlpha = 5e37;
constexpr double kEluMaxAlpha = 3e38;

// The order here is the order of surrogates() and of the "valid names" in error messages.
// (Laid out by hand, one surrogate per entry: clang-format would put every field on a line.)
// clang-format off
const Entry kEntries[] = {
    {"relu", math::Surrogate::relu, false, 0.0, {0, false, 0, "", ""},
     "control: the exact gradient of torch.relu (1 for x > 0, else 0)", ""},
    {"bsilu", math::Surrogate::bsilu, true, 1.67,
     {0.0, false, kBsiluMaxAlpha, "a number in [0, 1e30]",
      "1e30 keeps x + alpha, so d(x) and s''(x), finite for every float32 x (x + alpha overflows "
      "at x = FLT_MAX once alpha >= 2^103 ~ 1.01e31)"},
     "B-SiLU (x + a) * sigmoid(x) - a/2, the paper's main surrogate", ""},
    {"nelu", math::Surrogate::nelu, true, 0.01,
     {0.0, true, kNeluMaxAlpha, "a number in (0, 5e37]",
      "5e37 keeps s''(x) = 2 alpha (1 - 3x^2) / (1 + x^2)^3 finite when computed in float32 "
      "(its factor 2 alpha (4/(1 + x^2) - 3) reaches 6 alpha, which overflows past FLT_MAX/6 ~ "
      "5.67e37)"},
     "NeLU: x for x > 0, -a / (1 + x^2) for x <= 0 (paper swept a = 0.01, 0.05, 0.1)", ""},
    {"elu", math::Surrogate::elu, true, 1.0,
     {0.0, true, kEluMaxAlpha, "a number in (0, 3e38]",
      "d(0) = s''(0) = alpha must be finite in float32 (FLT_MAX ~ 3.40e38)"},
     "ELU: x for x > 0, a (e^x - 1) for x <= 0", ""},
    {"selu", math::Surrogate::selu, false, 0.0, {0, false, 0, "", ""},
     "SELU: lambda * ELU with the fixed self-normalizing constants", ""},
    {"leaky_relu", math::Surrogate::leaky_relu, true, 0.01, {0.0, true, 1.0, "a number in (0, 1]", ""},
     "LeakyReLU: slope 1 for x > 0, slope a for x <= 0", ""},
    {"gelu", math::Surrogate::gelu, false, 0.0, {0, false, 0, "", ""},
     "GELU: x * Phi(x), exact (erf) form", ""},
    {"gelu_tanh", math::Surrogate::gelu_tanh, false, 0.0, {0, false, 0, "", ""},
     "GELU, tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", ""},
    {"silu", math::Surrogate::silu, false, 0.0, {0, false, 0, "", ""},
     "SiLU / Swish: x * sigmoid(x)", ""},
    {"swish", math::Surrogate::silu, false, 0.0, {0, false, 0, "", ""},
     "alias of silu", "silu"},
    {"mish", math::Surrogate::mish, false, 0.0, {0, false, 0, "", ""},
     "Mish: x * tanh(softplus(x))", ""},
};
// clang-format on

// `text` as Python's repr shows a str's characters: printable ASCII as is, \\ and \' escaped,
// \t \n \r by name, every other byte (control characters, NUL, non-ASCII) as \xNN. So an error
// message shows exactly what was passed, and a NUL cannot cut it short.
std::string escape_for_message(c10::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += ch;
        } else {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        }
    }
  }
  return out;
}

std::string valid_names() {
  std::string out;
  for (const auto& e : kEntries) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

}  // namespace

std::string format_double(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  std::string out(buf, res.ptr);
  if (out.find_first_of(".ein") == std::string::npos) out += ".0";
  return out;
}

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
      entry != nullptr, op, ": unknown surrogate '", escape_for_message(surrogate),
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
      ok, op, ": alpha for surrogate '", entry->name, "' must be ", r.words,
      ", but got alpha=", format_double(a), " (default ", format_double(entry->default_alpha), ")",
      // Past the upper bound, say where the bound comes from.
      a > r.high && *r.why != '\0' ? "; " : "", a > r.high ? r.why : "");
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
