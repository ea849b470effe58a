// The CPU kernels, one table per instruction set, chosen once at run time.
//
// relu_kernel.cpp (portable code) walks the TensorIterator and hands every run of elements, made
// contiguous where it is not (loops.h), to a function of the active table. The tables are built
// by vec_kernels.cpp, compiled once per instruction set (ATen's CPU_CAPABILITY convention:
// namespaces DEFAULT, AVX2, AVX512 below). This header declares plain data and functions only: no
// inline code, so including it from an ISA translation unit hands no ISA code to anyone else.
#pragma once

#include <cstdint>

namespace sugar {
namespace cpu {

// Element storage of a kernel's tensors; the math is float for the 16-bit types.
enum StorageIndex : int {
  kStoreFloat = 0,
  kStoreDouble = 1,
  kStoreBFloat16 = 2,
  kStoreHalf = 3,
  kNumStorage = 4
};

constexpr int kTableSurrogates = 10;  // == math::kNumSurrogates (checked in vec_kernels.cpp)

// out[i] = relu(x[i]) over n contiguous elements.
using ForwardFn = void (*)(int64_t n, void* out, const void* x);
// out[i] = relu_backward<K>(grad[i], x[i], alpha, negative_only) over n contiguous elements.
using BackwardFn = void (*)(int64_t n, void* out, const void* grad, const void* x, double alpha);

// 16-bit inputs have only 65536 values, so for large bfloat16/float16 tensors the backward pass
// looks d(x) up in a table instead of computing it (the math, not memory, is the bottleneck at
// 2 bytes per element). The table holds, for every bit pattern, the float the vector math would
// compute for it (1 where negative_only pins d to 1), so the results are bit for bit those of
// the computing kernel: out = round(grad * d(x)).
constexpr int kGradTableSize = 65536;
// table[bits] = d(x) for the 16-bit storage type `storage`.
using GradTableFn = void (*)(float alpha, float* table);
// out[i] = round(grad[i] * table[bits of x[i]]) over n contiguous 16-bit elements.
using BackwardLutFn =
    void (*)(int64_t n, void* out, const void* grad, const void* x, const float* table);

struct KernelTable {
  ForwardFn forward[kNumStorage];
  // [storage][surrogate][negative_only]
  BackwardFn backward[kNumStorage][kTableSurrogates][2];
  // Indexed like backward; null where d(x) is computed directly (float32, float64; relu,
  // leaky_relu, nelu).
  GradTableFn grad_table[kNumStorage][kTableSurrogates][2];
  BackwardLutFn backward_lut[kNumStorage];
};

// The active table. Chosen on first use: SUGAR_CPU_CAPABILITY if set (an error if the name is
// unknown or the CPU cannot run it, on every call, so a forced choice never goes silently
// unused), else the one of at::get_cpu_capability() (the best the CPU runs, or ATen's own
// ATEN_CPU_CAPABILITY).
const KernelTable& active_kernel_table();

// Defined by vec_kernels.cpp, once per instruction set; call only on a CPU that runs it.
namespace DEFAULT {
const KernelTable* kernel_table();
}  // namespace DEFAULT
#if defined(__x86_64__) || defined(_M_X64)
#define SUGAR_CPU_X86_VARIANTS 1
namespace AVX2 {
const KernelTable* kernel_table();
}  // namespace AVX2
namespace AVX512 {
const KernelTable* kernel_table();
}  // namespace AVX512
#endif

}  // namespace cpu
}  // namespace sugar
