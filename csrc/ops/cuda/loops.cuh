// Elementwise launchers for the CUDA kernels: out[i] = op(in0[i], ..., in{N-1}[i]), every operand
// of the same dtype T and shape.
//
// Two paths:
//  - flat: the output is non-overlapping and dense (contiguous, channels_last, any permutation of
//    them) and every input has its strides on every dim of size > 1 (a size-1 dim's stride never
//    multiplies a nonzero index, so (N,C,1,1) tensors whose size-1 strides differ, common after
//    global pooling, still qualify). Element i of every operand then sits at the same offset from
//    its data pointer, so the op runs over [0, numel) as one flat array. When every
//    pointer is 16-byte aligned it moves 16-byte vectors (LDG.128/STG.128) and finishes the last
//    numel % vector elements in a scalar tail; otherwise it runs the same loop one element at a
//    time (still coalesced).
//  - strided: anything else (expanded, sliced, transposed grad_output against a contiguous self,
//    ...). A TensorIterator coalesces the dimensions and ATen's OffsetCalculator turns a linear
//    index into byte offsets; iterators too large for 32-bit offsets are split into pieces that
//    fit (TensorIterator::with_32bit_indexing), as ATen's own gpu_kernel does.
//
// Indexing is 64-bit in the flat path (tensors past 2^31 elements), and per 32-bit piece in the
// strided path. Launches go to the current stream of the operands' device (callers hold a device
// guard) and are checked with C10_CUDA_KERNEL_LAUNCH_CHECK.
//
// Only c10/cuda and ATen headers that do not pull in cuBLAS/cuSPARSE are used, so the build needs
// just the CUDA runtime headers of the toolkit.
#pragma once

#include <ATen/TensorIterator.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/cuda/detail/OffsetCalculator.cuh>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace sugar {
namespace cuda {

// Threads per block, and 16-byte vectors per operand each thread moves in the flat path (8 floats
// or 16 halfs per thread, as many as ATen's vectorized kernels): 32 B per input per thread in
// flight, which at the occupancy these kernels reach (>= 768 threads per SM) is >= 24 KiB per SM
// and input, above what HBM latency x bandwidth per SM asks for (about 18 KiB on an H100). More
// would only multiply the unrolled surrogate math (compile time, registers).
constexpr int kThreads = 128;
constexpr int kVecsPerThread = 2;
// Elements per thread in the strided path: one. Its cost is the offset computation (a divmod per
// coalesced dimension, ATen's OffsetCalculator unrolled over 25 dims); more elements per thread
// would multiply that code in every one of the 80 strided kernels for little gain on a path that
// dense activations (contiguous, channels_last) never take.
constexpr int kStridedPerThread = 1;
constexpr int kVecBytes = 16;

// N values of T moved as one aligned load/store (16 bytes when N * sizeof(T) == 16).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T val[N];
};

template <typename T, int kIn>
struct Inputs {
  const T* ptr[kIn];
};

template <int kIn, typename Op, typename T>
__device__ __forceinline__ T apply(const Op& op, const T (&v)[kIn]) {
  if constexpr (kIn == 1) {
    return op(v[0]);
  } else if constexpr (kIn == 2) {
    return op(v[0], v[1]);
  } else {
    static_assert(kIn == 3, "1 to 3 inputs");
    return op(v[0], v[1], v[2]);
  }
}

// The flat path. Block b owns vectors [b * kThreads * kVecsPerThread, (b+1) * ...); its thread t
// moves vectors base + j * kThreads + t, j < kVecsPerThread, so each warp-wide load is contiguous.
// All loads are issued before any math, for memory-level parallelism. The last block also does the
// scalar tail [num_vecs * kVec, n), fewer than kVec elements.
template <typename T, int kVec, int kIn, typename Op>
__global__ void __launch_bounds__(kThreads)
    flat_kernel(T* out, Inputs<T, kIn> in, int64_t n, Op op) {
  using P = Pack<T, kVec>;
  const int64_t num_vecs = n / kVec;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * (kThreads * kVecsPerThread) + threadIdx.x;

  P loaded[kIn][kVecsPerThread];
#pragma unroll
  for (int j = 0; j < kVecsPerThread; ++j) {
    const int64_t v = base + j * kThreads;
    if (v < num_vecs) {
#pragma unroll
      for (int k = 0; k < kIn; ++k) {
        loaded[k][j] = reinterpret_cast<const P*>(in.ptr[k])[v];
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kVecsPerThread; ++j) {
    const int64_t v = base + j * kThreads;
    if (v < num_vecs) {
      P result;
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        T args[kIn];
#pragma unroll
        for (int k = 0; k < kIn; ++k) args[k] = loaded[k][j].val[e];
        result.val[e] = apply<kIn>(op, args);
      }
      reinterpret_cast<P*>(out)[v] = result;
    }
  }

  if constexpr (kVec > 1) {
    if (blockIdx.x == gridDim.x - 1) {
      for (int64_t i = num_vecs * kVec + threadIdx.x; i < n; i += kThreads) {
        T args[kIn];
#pragma unroll
        for (int k = 0; k < kIn; ++k) args[k] = in.ptr[k][i];
        out[i] = apply<kIn>(op, args);
      }
    }
  }
}

// The strided path over one TensorIterator whose offsets fit 32 bits. Operand 0 is the output.
template <typename T, int kIn, typename Op>
__global__ void __launch_bounds__(kThreads) strided_kernel(
    OffsetCalculator<kIn + 1> offsets,
    std::array<char*, kIn + 1> data,
    uint32_t n,
    Op op) {
  const uint32_t base = blockIdx.x * (kThreads * kStridedPerThread) + threadIdx.x;
#pragma unroll
  for (int j = 0; j < kStridedPerThread; ++j) {
    const uint32_t i = base + j * kThreads;
    if (i < n) {
      const auto off = offsets.get(i);  // byte offsets
      T args[kIn];
#pragma unroll
      for (int k = 0; k < kIn; ++k) {
        args[k] = *reinterpret_cast<const T*>(data[k + 1] + off[k + 1]);
      }
      *reinterpret_cast<T*>(data[0] + off[0]) = apply<kIn>(op, args);
    }
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

inline unsigned grid_size(int64_t blocks) {
  // Past 2^31 - 1 blocks a tensor would need > 2^39 elements (flat path) or a 32-bit piece more
  // than 2^31 (strided path), neither of which fits in a GPU's memory; checked all the same.
  TORCH_CHECK(
      blocks <= std::numeric_limits<int32_t>::max(),
      "sugar: tensor too large for one kernel launch (", blocks, " blocks)");
  return static_cast<unsigned>(blocks);
}

inline bool aligned(const void* p, int bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

template <typename T, int kIn, typename Op>
void launch_strided(at::TensorIteratorBase& iter, const Op& op, cudaStream_t stream) {
  if (!iter.can_use_32bit_indexing()) {
    for (auto& sub : iter.with_32bit_indexing()) {
      launch_strided<T, kIn>(sub, op, stream);
    }
    return;
  }
  const int64_t n = iter.numel();
  if (n == 0) return;
  std::array<char*, kIn + 1> data;
  for (int k = 0; k <= kIn; ++k) data[k] = static_cast<char*>(iter.data_ptr(k));
  const auto offsets = make_offset_calculator<kIn + 1>(iter);
  const int64_t blocks = ceil_div(n, kThreads * kStridedPerThread);
  strided_kernel<T, kIn>
      <<<grid_size(blocks), kThreads, 0, stream>>>(offsets, data, static_cast<uint32_t>(n), op);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Whether every element of `t` sits at the same offset from its data pointer as in `out` (same
// shape): equal strides on every dim of size > 1; the strides of size-1 dims never matter.
inline bool same_offsets(const at::Tensor& t, const at::Tensor& out) {
  const auto sizes = out.sizes();
  const auto t_strides = t.strides();
  const auto out_strides = out.strides();
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] > 1 && t_strides[d] != out_strides[d]) return false;
  }
  return true;
}

// out[i] = op(inputs[0][i], ...). `out` was allocated by the caller (empty_relu_output of self,
// the last input) and every input has out's shape, dtype and device. The caller holds a device
// guard.
template <typename T, int kIn, typename Op>
void elementwise(const at::Tensor& out, const std::array<at::Tensor, kIn>& inputs, const Op& op) {
  static_assert(std::is_trivially_copyable_v<Op>, "the op is passed to the kernel by value");
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(out.device().index()).stream();

  bool flat = out.is_non_overlapping_and_dense();
  for (const auto& t : inputs) flat = flat && same_offsets(t, out);
  if (flat) {
    constexpr int kVec = kVecBytes / sizeof(T);
    static_assert(kVec * sizeof(T) == kVecBytes, "T must divide 16 bytes");
    T* out_ptr = out.mutable_data_ptr<T>();
    Inputs<T, kIn> in;
    bool vectorizable = aligned(out_ptr, kVecBytes);
    for (int k = 0; k < kIn; ++k) {
      in.ptr[k] = inputs[k].template const_data_ptr<T>();
      vectorizable = vectorizable && aligned(in.ptr[k], kVecBytes);
    }
    if (vectorizable) {
      // At least one block, so a tensor of fewer than kVec elements still gets its tail done.
      const int64_t blocks =
          std::max<int64_t>(1, ceil_div(n / kVec, int64_t(kThreads) * kVecsPerThread));
      flat_kernel<T, kVec, kIn><<<grid_size(blocks), kThreads, 0, stream>>>(out_ptr, in, n, op);
    } else {
      const int64_t blocks = ceil_div(n, int64_t(kThreads) * kVecsPerThread);
      flat_kernel<T, 1, kIn><<<grid_size(blocks), kThreads, 0, stream>>>(out_ptr, in, n, op);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }

  at::TensorIteratorConfig config;
  config.add_output(out);
  for (const auto& t : inputs) config.add_const_input(t);
  auto iter = config.build();
  launch_strided<T, kIn>(iter, op, stream);
}

}  // namespace cuda
}  // namespace sugar
