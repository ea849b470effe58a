// Elementwise loops over a TensorIterator for the CPU kernels: a contiguous fast path (the
// active vectorized kernel of kernels.h when there is one, else plain pointer loops) and a
// strided path, parallel via TensorIterator's for_each (at::parallel_for over chunks of at
// least `grain` elements, so small tensors stay on one thread: below 32768 elements no thread
// pool is involved at all).
#pragma once

#include <ATen/TensorIterator.h>
#include <ATen/Parallel.h>

#include <cstdint>

namespace sugar {
namespace cpu {

// The contiguous fast path when no vectorized kernel is given.
struct NoVectorKernel {
  bool operator()(char** /*data*/, int64_t /*n*/) const {
    return false;
  }
};

// out[i] = op(in0[i], ..., in{N-1}[i]), every operand of type T. Operand 0 of `iter` is the
// output, operands 1..N its inputs, as TensorIterator orders them. `vector_kernel(data, n)`
// handles a contiguous run of n elements and returns true, or returns false to leave it to the
// scalar loop.
template <typename T, int N, typename Op, typename VectorKernel = NoVectorKernel>
void elementwise(
    at::TensorIteratorBase& iter,
    const Op& op,
    const VectorKernel& vector_kernel = VectorKernel(),
    int64_t grain = at::internal::GRAIN_SIZE) {
  static_assert(N >= 1 && N <= 3, "1 to 3 inputs");
  iter.for_each(
      [&op, &vector_kernel](char** data, const int64_t* strides, int64_t n) {
        bool contiguous = true;
        for (int k = 0; k <= N; ++k) contiguous = contiguous && strides[k] == int64_t(sizeof(T));
        T* out = reinterpret_cast<T*>(data[0]);
        const T* a = reinterpret_cast<const T*>(data[1]);
        if (contiguous && vector_kernel(data, n)) return;
        if (contiguous) {
          if constexpr (N == 1) {
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i]);
          } else if constexpr (N == 2) {
            const T* b = reinterpret_cast<const T*>(data[2]);
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
          } else {
            const T* b = reinterpret_cast<const T*>(data[2]);
            const T* c = reinterpret_cast<const T*>(data[3]);
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i], c[i]);
          }
          return;
        }
        char* po = data[0];
        const char* pa = data[1];
        const char* pb = N >= 2 ? data[2] : nullptr;
        const char* pc = N >= 3 ? data[3] : nullptr;
        for (int64_t i = 0; i < n; ++i) {
          const T va = *reinterpret_cast<const T*>(pa + i * strides[1]);
          T* o = reinterpret_cast<T*>(po + i * strides[0]);
          if constexpr (N == 1) {
            *o = op(va);
          } else if constexpr (N == 2) {
            *o = op(va, *reinterpret_cast<const T*>(pb + i * strides[2]));
          } else {
            *o = op(va, *reinterpret_cast<const T*>(pb + i * strides[2]),
                    *reinterpret_cast<const T*>(pc + i * strides[3]));
          }
        }
      },
      grain);
}

}  // namespace cpu
}  // namespace sugar
