// Scores rows with a model that `torch-sugar compare --save-models` wrote as an AOTInductor
// package (<activation>-seed<N>.aoti.pt2), in C++ with torch alone: the package holds the model
// compiled into kernels, SUGAR's ReLU included, so this program links torch and not torch-sugar.
//
//   score_aoti MODEL.aoti.pt2 ROWS.csv [BATCH_ROWS] > probabilities.csv
//
// ROWS.csv: one encoded row per line, comma-separated, no header: the standardized numeric
// columns, then one category index per categorical column, as preprocessing.json (beside the
// model) describes. Prints one line per row: the class probabilities (softmax of the model's
// logits), in preprocessing.json's class order. Rows go to the model BATCH_ROWS at a time
// (default 1024; the package takes any number of rows).
#include <ATen/ATen.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The rows of a CSV of numbers as one float32 tensor [rows, columns].
at::Tensor read_rows(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<float> values;
  int64_t columns = -1, rows = 0;
  std::string line, cell;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF line ends
    if (line.empty()) continue;
    int64_t count = 0;
    std::stringstream cells(line);
    while (std::getline(cells, cell, ',')) {
      char* end = nullptr;
      errno = 0;
      const float value = std::strtof(cell.c_str(), &end);
      if (end == cell.c_str() || *end != '\0' || errno == ERANGE) {
        throw std::runtime_error(
            path + " line " + std::to_string(rows + 1) + ": not a number: '" + cell + "'");
      }
      values.push_back(value);
      ++count;
    }
    if (columns >= 0 && count != columns) {
      throw std::runtime_error(
          path + " line " + std::to_string(rows + 1) + ": " + std::to_string(count) +
          " values, the first line has " + std::to_string(columns));
    }
    columns = count;
    ++rows;
  }
  if (rows == 0) throw std::runtime_error(path + " has no rows");
  return at::tensor(values).reshape({rows, columns});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s MODEL.aoti.pt2 ROWS.csv [BATCH_ROWS]\n", argv[0]);
    return 2;
  }
  char* end = nullptr;
  const long long batch_rows = argc == 4 ? std::strtoll(argv[3], &end, 10) : 1024;
  if (batch_rows < 1 || (argc == 4 && *end != '\0')) {
    std::fprintf(stderr, "BATCH_ROWS must be a positive integer, got '%s'\n", argv[3]);
    return 2;
  }
  // The package checks its input's dtype, width and layout only when this is set; rows of the
  // wrong width are an error naming the expected width, not garbage.
  setenv("AOTI_RUNTIME_CHECK_INPUTS", "1", /*overwrite=*/1);
  try {
    const at::Tensor rows = read_rows(argv[2]);
    torch::inductor::AOTIModelPackageLoader model(argv[1]);
    for (int64_t start = 0; start < rows.size(0); start += batch_rows) {
      const at::Tensor batch = rows.slice(0, start, start + batch_rows);
      // Packages written by torch 2.9 refuse a batch of 1 row under the input checks (its
      // AOTInductor cannot turn the batch's lower bound off): score such a row as two copies.
      const bool one = batch.size(0) == 1;
      const at::Tensor logits =
          model.run({one ? batch.expand({2, batch.size(1)}).contiguous() : batch})[0].slice(
              0, 0, batch.size(0));
      const at::Tensor probabilities = at::softmax(logits, 1).contiguous();
      const auto p = probabilities.accessor<float, 2>();
      for (int64_t i = 0; i < p.size(0); ++i) {
        for (int64_t j = 0; j < p.size(1); ++j) std::printf(j ? ",%.9g" : "%.9g", p[i][j]);
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {  // c10::Error for a bad package or rows of the wrong width
    std::fprintf(stderr, "score_aoti: %s\n", e.what());
    return 1;
  }
  return 0;
}
