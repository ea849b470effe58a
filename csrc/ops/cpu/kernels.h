// The vectorized CPU kernels, one table per instruction set, chosen once at run time.
//
// relu_kernel.cpp (compiled for plain x86-64 or any other CPU) walks the TensorIterator and hands
// every contiguous run of elements to a function of the active table; strided runs, float64, and
// the portable "default" capability use the scalar loops of loops.h. The tables are built in
// relu_kernel_avx2.cpp and relu_kernel_avx512.cpp, each compiled for its instruction set (see the
// top of those files for how, and why nothing of theirs leaks into the portable code).
//
// This header declares plain data and functions only: no inline code, so including it from an
// AVX2 translation unit cannot hand AVX2 machine code to anyone else.
#pragma once

#include <cstdint>

namespace sugar {
namespace cpu {

// Instruction sets with a kernel table, in order of preference. The names are the values of the
// environment variable SUGAR_CPU_CAPABILITY and of torch.ops.sugar._cpu_capability().
enum class Capability : int {
  kDefault = 0,  // portable scalar loops (what the compiler makes of them for baseline x86-64)
  kAvx2 = 1,     // AVX2 + FMA + F16C: 8 floats per instruction
  kAvx512 = 2,   // AVX-512 F/BW/VL/DQ: 16 floats per instruction
};

// Element storage of a kernel's tensors; the math is float for all three.
enum StorageIndex : int { kStoreFloat = 0, kStoreBFloat16 = 1, kStoreHalf = 2, kNumStorage = 3 };

// Bit patterns of 16-bit floats, as distinct types so the vector loads can overload on them
// (layout-compatible with c10::BFloat16 and c10::Half).
struct BFloat16Bits {
  uint16_t bits;
  static constexpr uint16_t kInfBits = 0x7F80;  // +inf; larger magnitudes are NaN
};
struct HalfBits {
  uint16_t bits;
  static constexpr uint16_t kInfBits = 0x7C00;
};

constexpr int kTableSurrogates = 10;  // == math::kNumSurrogates (checked in relu_kernel.cpp)

// out[i] = relu(x[i]) over n contiguous elements.
using ForwardFn = void (*)(int64_t n, void* out, const void* x);
// out[i] = relu_backward<K>(grad[i], x[i], alpha, negative_only) over n contiguous elements.
using BackwardFn = void (*)(int64_t n, void* out, const void* grad, const void* x, float alpha);

// 16-bit inputs have only 65536 values, so for large bfloat16/float16 tensors the backward pass
// looks d(x) up in a table instead of computing it (the math, not memory, is the bottleneck at
// 2 bytes per element). The table holds, for every bit pattern, the float the vector math would
// compute for it (1 where negative_only pins d to 1), so the results are bit for bit those of
// the computing kernel: out = round(grad * d(x)).
constexpr int kGradTableSize = 65536;
// table[bits] = d(x) for the 16-bit storage type `storage`.
using GradTableFn = void (*)(float alpha, float* table);
// out[i] = round(grad[i] * table[bits of x[i]]) over n contiguous 16-bit elements.
using BackwardLutFn = void (*)(int64_t n, void* out, const void* grad, const void* x, const float* table);

struct KernelTable {
  ForwardFn forward[kNumStorage];
  // [storage][surrogate][negative_only]
  BackwardFn backward[kNumStorage][kTableSurrogates][2];
  // Indexed like backward; null where d(x) is computed directly (float32; relu, leaky_relu, nelu).
  GradTableFn grad_table[kNumStorage][kTableSurrogates][2];
  BackwardLutFn backward_lut[kNumStorage];
};

// The table of the active capability, or nullptr for the portable scalar loops. Chosen on first
// use: SUGAR_CPU_CAPABILITY if set (an error if the name is unknown or the CPU cannot run it,
// on every call, so a forced choice never goes silently unused), else the best the CPU runs.
const KernelTable* active_kernel_table();

// The active capability (same choice, same errors as active_kernel_table).
Capability active_capability();

// "default", "avx2", "avx512".
const char* capability_name(Capability c);

// Whether this CPU (and its operating system) can run capability c.
bool cpu_supports(Capability c);

// Defined by the ISA translation units; call only after cpu_supports(...) said yes.
namespace avx2 {
const KernelTable* kernel_table();  // nullptr where not compiled (non-x86 builds)
}  // namespace avx2
namespace avx512 {
const KernelTable* kernel_table();
}  // namespace avx512

}  // namespace cpu
}  // namespace sugar
