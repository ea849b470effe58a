// Run-time choice of the CPU kernel table (kernels.h), and the private op
// sugar::_cpu_capability() -> str that reports it.
//
// Compiled for the baseline target like the rest of the library: this file only asks the CPU
// what it can do, and calls into an ISA translation unit only after the answer was yes.
#include "kernels.h"
#include "../relu.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstdlib>
#include <string>

namespace sugar {
namespace cpu {

const char* capability_name(Capability c) {
  switch (c) {
    case Capability::kDefault:
      return "default";
    case Capability::kAvx2:
      return "avx2";
    case Capability::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool cpu_supports(Capability c) {
  if (c == Capability::kDefault) return true;
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 registers (XCR0).
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c");
  if (c == Capability::kAvx2) return avx2 && avx2::kernel_table() != nullptr;
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq");
  return c == Capability::kAvx512 && avx512 && avx512::kernel_table() != nullptr;
#else
  return false;
#endif
}

namespace {

constexpr const char* kEnvVar = "SUGAR_CPU_CAPABILITY";

struct Choice {
  Capability capability = Capability::kDefault;
  const KernelTable* table = nullptr;
  std::string error;  // non-empty: SUGAR_CPU_CAPABILITY asked for something impossible
};

std::string supported_list() {
  std::string out;
  for (Capability c : {Capability::kDefault, Capability::kAvx2, Capability::kAvx512}) {
    if (!cpu_supports(c)) continue;
    if (!out.empty()) out += ", ";
    out += capability_name(c);
  }
  return out;
}

const KernelTable* table_of(Capability c) {
  switch (c) {
    case Capability::kAvx2:
      return avx2::kernel_table();
    case Capability::kAvx512:
      return avx512::kernel_table();
    default:
      return nullptr;
  }
}

Choice choose() {
  Choice choice;
  const char* env = std::getenv(kEnvVar);
  if (env != nullptr && *env != '\0') {
    const std::string want(env);
    bool known = false;
    for (Capability c : {Capability::kDefault, Capability::kAvx2, Capability::kAvx512}) {
      if (want != capability_name(c)) continue;
      known = true;
      if (!cpu_supports(c)) {
        choice.error = std::string(kEnvVar) + "=" + want + " asks for the " + want +
            " CPU kernels, but this CPU (or this build) cannot run them; it can run: " +
            supported_list() + ". Unset " + kEnvVar + " to use the best of these.";
        return choice;
      }
      choice.capability = c;
    }
    if (!known) {
      choice.error = std::string(kEnvVar) + " must be one of default, avx2, avx512 (or unset for "
          "the best this CPU can run), but got '" + want + "'";
    }
  } else {
    for (Capability c : {Capability::kAvx512, Capability::kAvx2}) {
      if (cpu_supports(c)) {
        choice.capability = c;
        break;
      }
    }
  }
  choice.table = table_of(choice.capability);
  return choice;
}

const Choice& the_choice() {
  static const Choice choice = choose();
  TORCH_CHECK_VALUE(choice.error.empty(), "sugar: ", choice.error);
  return choice;
}

}  // namespace

std::string cpu_capability_name() {
  return capability_name(active_capability());
}

const KernelTable* active_kernel_table() {
  return the_choice().table;
}

Capability active_capability() {
  return the_choice().capability;
}

}  // namespace cpu
}  // namespace sugar
