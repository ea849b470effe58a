// The cache of d(x) tables for 16-bit inputs (grad_table.h). Portable code: it only calls the
// active table's fill function, which capability.cpp chose for this CPU.
#include "grad_table.h"

#include <cstring>
#include <deque>
#include <mutex>

namespace sugar {
namespace cpu {
namespace {

struct Entry {
  const KernelTable* kernels;
  int storage;
  int kind;
  uint32_t alpha_bits;
  bool negative_only;
  std::shared_ptr<const float[]> table;
};

constexpr size_t kMaxEntries = 16;

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}

std::deque<Entry>& cache() {
  static std::deque<Entry> entries;
  return entries;
}

}  // namespace

std::shared_ptr<const float[]>
grad_table(const KernelTable& kernels, int storage, int kind, float alpha, bool negative_only) {
  if (storage < 0 || storage >= kNumStorage || kind < 0 || kind >= kTableSurrogates) return nullptr;
  const GradTableFn fill = kernels.grad_table[storage][kind][negative_only ? 1 : 0];
  if (fill == nullptr || kernels.backward_lut[storage] == nullptr) return nullptr;
  uint32_t alpha_bits;
  std::memcpy(&alpha_bits, &alpha, sizeof(alpha_bits));

  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& entries = cache();
  for (const Entry& e : entries) {
    if (e.kernels == &kernels && e.storage == storage && e.kind == kind &&
        e.alpha_bits == alpha_bits && e.negative_only == negative_only) {
      return e.table;
    }
  }
  std::shared_ptr<float[]> table(new float[kGradTableSize]);
  fill(alpha, table.get());
  if (entries.size() == kMaxEntries) entries.pop_front();
  entries.push_back(Entry{&kernels, storage, kind, alpha_bits, negative_only, table});
  return table;
}

}  // namespace cpu
}  // namespace sugar
