// Run-time choice of the CPU kernel table (kernels.h), and the private op
// sugar::_cpu_capability() -> str that reports it ("default", "avx2", "avx512").
//
// Portable code: it only asks the CPU (and ATen) what it can do, and takes an ISA table only
// after the answer was yes.
#include "../relu.h"
#include "kernels.h"

#include <ATen/Version.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

namespace sugar {
namespace cpu {
namespace {

constexpr const char* kEnvVar = "SUGAR_CPU_CAPABILITY";

struct Variant {
  const char* name;  // ours, the value of SUGAR_CPU_CAPABILITY
  const char* aten;  // at::get_cpu_capability()'s
  const KernelTable* (*table)();
  bool (*supported)();
};

bool always() {
  return true;
}

#if defined(SUGAR_CPU_X86_VARIANTS) && (defined(__GNUC__) || defined(__clang__))
// __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 registers (XCR0).
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
// In order of preference, best last.
const Variant kVariants[] = {
    {"default", "DEFAULT", &DEFAULT::kernel_table, &always},
    {"avx2", "AVX2", &AVX2::kernel_table, &has_avx2},
    {"avx512", "AVX512", &AVX512::kernel_table, &has_avx512},
};
#else
const Variant kVariants[] = {{"default", "DEFAULT", &DEFAULT::kernel_table, &always}};
#endif

struct Choice {
  const Variant* variant = &kVariants[0];
  std::string error;  // non-empty: SUGAR_CPU_CAPABILITY asked for something impossible
};

Choice choose() {
  Choice choice;
  const char* env = std::getenv(kEnvVar);
  if (env == nullptr || *env == '\0') {
    // ATen's choice (cpuinfo, capped by ATEN_CPU_CAPABILITY), when we have that variant.
    const std::string aten = at::get_cpu_capability();
    for (const Variant& v : kVariants) {
      if (aten == v.aten && v.supported()) choice.variant = &v;
    }
    return choice;
  }
  const std::string want(env);
  std::string runnable;
  for (const Variant& v : kVariants) {
    if (v.supported()) runnable += (runnable.empty() ? "" : ", ") + std::string(v.name);
  }
  for (const Variant& v : kVariants) {
    if (want != v.name) continue;
    if (!v.supported()) {
      choice.error =
          std::string(kEnvVar) + "=" + want + " asks for the " + want +
          " CPU kernels, but this CPU (or this build) cannot run them; it can run: " + runnable +
          ". Unset " + kEnvVar + " to use the best of these.";
    }
    choice.variant = &v;
    return choice;
  }
  choice.error =
      std::string(kEnvVar) +
      " must be one of default, avx2, avx512 (or unset for the best this CPU can run), but got '" +
      want + "'";
  return choice;
}

const Variant& the_variant() {
  static const Choice choice = choose();
  TORCH_CHECK_VALUE(choice.error.empty(), "sugar: ", choice.error);
  return *choice.variant;
}

}  // namespace

const KernelTable& active_kernel_table() {
  // A forced, impossible choice throws here on every call (the static stays unset).
  static const KernelTable* table = the_variant().table();
  return *table;
}

std::string cpu_capability_name() {
  return the_variant().name;
}

}  // namespace cpu
}  // namespace sugar
