// The AVX2 kernel table (AVX2 + FMA + F16C), used only on CPUs that have them (capability.cpp).
//
// How this file (and relu_kernel_avx512.cpp, built the same way) gets its instruction set
// without per-file compiler flags, and why none of its machine code can end up in the portable
// path:
//  1. Every header with code that other translation units also compile (the C++ library, c10)
//     is included first, before the target switch, so its inline functions are compiled here
//     for the baseline target, exactly as elsewhere.
//  2. `#pragma GCC target` (clang: `#pragma clang attribute`) then makes every function defined
//     after it an AVX2 function, as `-mavx2 -mfma -mf16c` would for the whole file.
//  3. Everything defined after it is in namespace sugar::cpu::avx2 or is a template instantiated
//     only with avx2::Vec (surrogate_math.h's templates, vec_kernels.h). So every out-of-line or
//     COMDAT copy has a mangled name no portable code uses, and the linker cannot fold an AVX2
//     body into a symbol the portable code calls (the ODR/COMDAT trap of per-ISA files).
//     tests/test_cpu_variants.py compiles this file and checks that with `nm`.
//  4. Nothing here runs at load time (no static constructors): the table is built on the first
//     call of avx2::kernel_table(), which capability.cpp makes only after checking the CPU.
#include <cstdint>
#include <cstring>
#include <cmath>
#include <type_traits>

#include <c10/macros/Macros.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SUGAR_CPU_TARGET_AVX2 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#endif

#include "kernels.h"

#ifdef SUGAR_CPU_TARGET_AVX2
#include "vec_avx2.h"
#include "vec_kernels.h"

namespace sugar {
namespace cpu {
namespace avx2 {

const KernelTable* kernel_table() {
  static const KernelTable table = vec::make_kernel_table<Vec>();
  return &table;
}

}  // namespace avx2
}  // namespace cpu
}  // namespace sugar

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else  // not x86-64 with GCC or clang: no AVX2 table

namespace sugar {
namespace cpu {
namespace avx2 {
const KernelTable* kernel_table() {
  return nullptr;
}
}  // namespace avx2
}  // namespace cpu
}  // namespace sugar

#endif
