// The CPU kernels over contiguous memory, on ATen's at::vec::Vectorized<T>: surrogate_math.h's
// templates instantiated with Vectorized<float> (Vectorized<double> for float64): Sleef's exp and
// erfc through Vectorized's methods for float64, an inline exp and normal cdf written out of
// Vectorized operations for float lanes (surrogate_math.h).
//
// One source, compiled once per instruction set with ATen's CPU_CAPABILITY convention (the flags
// pytorch's cmake/Codegen.cmake uses; see CMakeLists.txt): DEFAULT (no flags; on
// aarch64 Vectorized is NEON there), and on x86-64 AVX2 (-mavx2 -mfma -mf16c) and AVX512
// (-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma), each with -DCPU_CAPABILITY=X
// -DCPU_CAPABILITY_X. capability.cpp picks one table at run time.
//
// Everything defined here is in namespace sugar::cpu::CPU_CAPABILITY (its name is the ISA's) or is
// a template instantiated with at::vec::CPU_CAPABILITY types, so no out-of-line copy compiled for
// an ISA can be merged by the linker with a portable function of the same name;
// tests/test_cpu_variants.py checks the objects and the library for it. Nothing of ours runs at
// load time (the one static constructor is <iostream>'s, from ATen's headers; checked alike).
//
// The same value always gives the same result within one variant: every element is computed by
// these loops, lane by lane (a tail shorter than a vector is zero-padded; strided tensors are
// copied through contiguous buffers by loops.h), whatever the tensor's length or layout.
#ifndef CPU_CAPABILITY
#error "compile with -DCPU_CAPABILITY=DEFAULT|AVX2|AVX512 and the ISA's flags (CMakeLists.txt)"
#endif

#include "../surrogate_math.h"
#include "kernels.h"

#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

// `flatten` inlines all of surrogate_math.h into the loops (left alone, GCC calls the bigger
// surrogates out of line, once per vector).
#if defined(__GNUC__) || defined(__clang__)
#define SUGAR_FLATTEN __attribute__((flatten))
#else
#define SUGAR_FLATTEN
#endif

namespace sugar {
namespace cpu {
namespace CPU_CAPABILITY {
namespace {

using at::vec::Vectorized;
using math::Surrogate;

// Elements of storage type S as vectors of the compute type (float, double for float64): one
// vector, or two for the 16-bit types (widened to float, rounded back once to nearest even).
template <typename S>
struct Block {
  using T = at::opmath_type<S>;
  using V = Vectorized<T>;
  static constexpr int kParts = std::is_same_v<T, S> ? 1 : 2;
  static constexpr int64_t kSize = V::size() * kParts;
  V v[kParts];

  // count < kSize loads zeros past the end.
  static Block load(const S* p, int64_t count = kSize) {
    Block b;
    if constexpr (kParts == 1) {
      b.v[0] = V::loadu(p, count);
    } else {
      std::tie(b.v[0], b.v[1]) = at::vec::convert_to_float<S>(Vectorized<S>::loadu(p, count));
    }
    return b;
  }

  void store(S* p, int64_t count = kSize) const {
    if constexpr (kParts == 1) {
      v[0].store(p, count);
    } else {
      at::vec::convert_from_float<S>(v[0], v[1]).store(p, count);
    }
  }
};

// relu (x < 0 ? +0 : x) as a select on the values' own bits, so NaN payloads and -0.0 pass.
template <typename S>
void relu_forward_kernel(int64_t n, void* out_ptr, const void* x_ptr) {
  if constexpr (sizeof(S) == 2) {
    // 16-bit floats on their bits: negative = sign set, magnitude neither 0 nor NaN.
    using I = Vectorized<int16_t>;
    auto* out = static_cast<int16_t*>(out_ptr);
    const auto* x = static_cast<const int16_t*>(x_ptr);
    const I zero(0), magnitude_mask(0x7FFF);
    const I inf(static_cast<int16_t>(std::is_same_v<S, at::BFloat16> ? 0x7F80 : 0x7C00));
    for (int64_t i = 0; i < n; i += I::size()) {
      const int64_t count = std::min<int64_t>(I::size(), n - i);
      const I b = I::loadu(x + i, count);
      const I magnitude = b & magnitude_mask;
      const I negative = (b < zero) & (magnitude > zero) & (magnitude <= inf);
      I::blendv(b, zero, negative).store(out + i, count);
    }
  } else {
    using V = Vectorized<S>;
    auto* out = static_cast<S*>(out_ptr);
    const auto* x = static_cast<const S*>(x_ptr);
    const V zero(0);
    for (int64_t i = 0; i < n; i += V::size()) {
      const int64_t count = std::min<int64_t>(V::size(), n - i);
      const V a = V::loadu(x + i, count);
      V::blendv(a, zero, a < zero).store(out + i, count);
    }
  }
}

// grad * d(x) for kUnroll blocks at a time: the math is a long chain of dependent operations, so
// the core needs several chains in flight.
template <typename S, Surrogate K, bool NegativeOnly>
SUGAR_FLATTEN void relu_backward_kernel(
    int64_t n,
    void* out_ptr,
    const void* grad_ptr,
    const void* x_ptr,
    double alpha) {
  using B = Block<S>;
  using V = typename B::V;
  constexpr int kUnroll = 4 / B::kParts;
  auto* out = static_cast<S*>(out_ptr);
  const auto* grad = static_cast<const S*>(grad_ptr);
  const auto* x = static_cast<const S*>(x_ptr);
  const V a(static_cast<typename B::T>(alpha));
  auto compute = [&a](const B& g, const B& xv) {
    B r;
    for (int p = 0; p < B::kParts; ++p) {
      r.v[p] = math::relu_backward<K, V>(g.v[p], xv.v[p], a, NegativeOnly);
    }
    return r;
  };
  int64_t i = 0;
  for (; i + kUnroll * B::kSize <= n; i += kUnroll * B::kSize) {
    B r[kUnroll];
    for (int u = 0; u < kUnroll; ++u) {
      r[u] = compute(B::load(grad + i + u * B::kSize), B::load(x + i + u * B::kSize));
    }
    for (int u = 0; u < kUnroll; ++u) r[u].store(out + i + u * B::kSize);
  }
  for (; i < n; i += B::kSize) {
    const int64_t count = std::min<int64_t>(B::kSize, n - i);
    compute(B::load(grad + i, count), B::load(x + i, count)).store(out + i, count);
  }
}

// table[bits] = d(x) for every 16-bit pattern of S, computed exactly as relu_backward_kernel
// computes it (the same instantiation on the same float), 1 where negative_only pins d to 1
// (grad * 1 is grad, bit for bit): the table path's results are the computing kernel's.
template <typename S, Surrogate K, bool NegativeOnly>
SUGAR_FLATTEN void fill_grad_table(float alpha, float* table) {
  using B = Block<S>;
  using V = typename B::V;
  const V a(alpha);
  uint16_t bits[B::kSize];
  for (int base = 0; base < kGradTableSize; base += B::kSize) {
    for (int j = 0; j < B::kSize; ++j) bits[j] = static_cast<uint16_t>(base + j);
    const B x = B::load(reinterpret_cast<const S*>(bits));
    for (int p = 0; p < B::kParts; ++p) {
      V d = math::surrogate_grad<K, V>(x.v[p], a);
      if (NegativeOnly) d = math::where(x.v[p] > V(0), V(1), d);
      d.store(table + base + p * V::size());
    }
  }
}

// V's lanes from table[x[0]], ..., table[x[V::size() - 1]]: scalar reads straight into the
// vector (Vectorized's per-lane constructor), no gather instruction (on AMD's cores slower than
// the scalar reads) and no buffer (a vector load right after the scalar stores it reads would
// stall on store forwarding).
template <typename V, size_t... I>
inline V lookup(const float* table, const uint16_t* x, std::index_sequence<I...>) {
  return V(table[x[I]]...);
}

// out = round(grad * table[bits of x]) over n contiguous 16-bit elements.
template <typename S>
void relu_backward_lut_kernel(
    int64_t n,
    void* out_ptr,
    const void* grad_ptr,
    const void* x_ptr,
    const float* table) {
  using B = Block<S>;
  using V = typename B::V;
  constexpr auto kLanes = std::make_index_sequence<V::size()>();
  auto* out = static_cast<S*>(out_ptr);
  const auto* grad = static_cast<const S*>(grad_ptr);
  const auto* x = static_cast<const uint16_t*>(x_ptr);
  int64_t i = 0;
  for (; i + B::kSize <= n; i += B::kSize) {
    B r = B::load(grad + i);
    for (int p = 0; p < B::kParts; ++p) {
      r.v[p] = r.v[p] * lookup<V>(table, x + i + p * V::size(), kLanes);
    }
    r.store(out + i);
  }
  if (i < n) {
    // The tail through a zero-padded copy of x (bits 0 are +0.0, a valid index).
    uint16_t xt[B::kSize] = {};
    std::memcpy(xt, x + i, (n - i) * sizeof(uint16_t));
    B r = B::load(grad + i, n - i);
    for (int p = 0; p < B::kParts; ++p) {
      r.v[p] = r.v[p] * lookup<V>(table, xt + p * V::size(), kLanes);
    }
    r.store(out + i, n - i);
  }
}

template <typename S, int I = 0>
void fill_backward(KernelTable& table, int storage) {
  if constexpr (I < math::kNumSurrogates) {
    constexpr auto K = static_cast<Surrogate>(I);
    table.backward[storage][I][0] = &relu_backward_kernel<S, K, false>;
    table.backward[storage][I][1] = &relu_backward_kernel<S, K, true>;
    // Tables only where d(x) costs more than a gather (exp, erfc): not for the relu control (a
    // select: 0 where x <= 0 even for an inf or NaN grad), leaky_relu and nelu (cheap).
    constexpr bool kCheap =
        K == Surrogate::relu || K == Surrogate::leaky_relu || K == Surrogate::nelu;
    if constexpr (sizeof(S) == 2 && !kCheap) {
      table.grad_table[storage][I][0] = &fill_grad_table<S, K, false>;
      table.grad_table[storage][I][1] = &fill_grad_table<S, K, true>;
    }
    fill_backward<S, I + 1>(table, storage);
  }
}

template <typename S>
void fill_storage(KernelTable& table, int storage) {
  table.forward[storage] = &relu_forward_kernel<S>;
  fill_backward<S>(table, storage);
  if constexpr (sizeof(S) == 2) table.backward_lut[storage] = &relu_backward_lut_kernel<S>;
}

KernelTable make_kernel_table() {
  static_assert(math::kNumSurrogates == kTableSurrogates, "kernels.h: kTableSurrogates is stale");
  KernelTable table{};
  fill_storage<float>(table, kStoreFloat);
  fill_storage<double>(table, kStoreDouble);
  fill_storage<at::BFloat16>(table, kStoreBFloat16);
  fill_storage<at::Half>(table, kStoreHalf);
  return table;
}

}  // namespace

const KernelTable* kernel_table() {
  static const KernelTable table = make_kernel_table();
  return &table;
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace sugar
