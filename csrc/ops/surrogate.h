// Host-side surrogate handling: name -> kind, alpha defaults and ranges, argument validation.
// The math itself lives in surrogate_math.h.
#pragma once

#include "surrogate_math.h"

#include <torch_sugar/ops.h>

#include <c10/util/string_view.h>

#include <optional>
#include <string>

namespace sugar {

// A validated (surrogate, alpha, negative_only) triple, alpha resolved to its default.
struct SurrogateSpec {
  math::Surrogate kind;
  double alpha;  // 0 for surrogates that take none
  bool negative_only;
};

// Validates the op arguments and resolves alpha. `op` names the caller in error messages.
// Throws c10::ValueError naming the argument, the value given and what is allowed.
SurrogateSpec parse_surrogate(
    const char* op,
    c10::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only);

// As Python's repr writes a float: the shortest text that reads back as v ("0.1", not
// "0.10000000000000001"), with ".0" on whole numbers ("0.0", "-1.0"). For messages and reprs.
std::string format_double(double v);

}  // namespace sugar
