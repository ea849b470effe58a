// The AVX-512 kernel table (AVX-512 F/BW/VL/DQ with FMA and F16C), used only on CPUs that have
// them (capability.cpp). Built exactly like relu_kernel_avx2.cpp: read that file's header.
#include <cstdint>
#include <cstring>
#include <cmath>
#include <type_traits>

#include <c10/macros/Macros.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SUGAR_CPU_TARGET_AVX512 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12 warns about the deliberately undefined pass-through operand (`__m512 __Y = __Y;`) of
// its own AVX-512 intrinsics once they are inlined; the warning is about the header, not us.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#endif

#include "kernels.h"

#ifdef SUGAR_CPU_TARGET_AVX512
#include "vec_avx512.h"
#include "vec_kernels.h"

namespace sugar {
namespace cpu {
namespace avx512 {

const KernelTable* kernel_table() {
  static const KernelTable table = vec::make_kernel_table<Vec>();
  return &table;
}

}  // namespace avx512
}  // namespace cpu
}  // namespace sugar

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else  // not x86-64 with GCC or clang: no AVX-512 table

namespace sugar {
namespace cpu {
namespace avx512 {
const KernelTable* kernel_table() {
  return nullptr;
}
}  // namespace avx512
}  // namespace cpu
}  // namespace sugar

#endif
