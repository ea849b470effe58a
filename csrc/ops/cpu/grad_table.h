// The d(x) tables of the 16-bit backward pass (see kernels.h): built on first use, then shared.
#pragma once

#include "kernels.h"

#include <cstdint>
#include <memory>

namespace sugar {
namespace cpu {

// Below this many elements the backward pass computes d(x) directly: a table costs 65536
// evaluations to build (about 0.1 ms, once per surrogate, alpha, dtype and negative_only).
constexpr int64_t kGradTableMinElements = int64_t(1) << 16;

// The table of d(x) (256 KiB) for `storage` (kStoreBFloat16 or kStoreHalf), surrogate `kind`,
// `alpha` and `negative_only`, made with the kernels of `kernels`; null where `kernels` has no
// table function (float32; relu, leaky_relu and nelu, computed directly). Thread-safe; the 16
// most recently built tables are kept, and a caller's reference keeps its table alive.
std::shared_ptr<const float[]>
grad_table(const KernelTable& kernels, int storage, int kind, float alpha, bool negative_only);

}  // namespace cpu
}  // namespace sugar
