#pragma once
// Reader for the golden fixtures under tests/golden/ written by tests/golden/golden_io.py.
// Format, per tensor: a line "tensor <name> <rank> <d0> ... <d_rank-1>", then one line with the
// row-major values. Lines starting with '#' are comments.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <cpc/core/error.hpp>
#include <cpc/core/tensor.hpp>

namespace cpc::testing {

/// All tensors of one fixture file, by name, as double.
/// Errors: throws `cpc::io_error` for a missing file or a malformed entry.
inline std::map<std::string, array<double>> read_golden(const std::string& file) {
  const std::string path = std::string(CPC_GOLDEN_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw io_error("golden fixture not found: " + path + " (run tests/golden/generate.sh)");
  std::map<std::string, array<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream hs(line);
    std::string tag, name;
    std::size_t rank = 0;
    hs >> tag >> name >> rank;
    if (tag != "tensor") throw io_error(path + ": expected 'tensor', got '" + tag + "'");
    std::vector<std::size_t> shape(rank);
    std::size_t count = 1;
    for (auto& d : shape) {
      hs >> d;
      count *= d;
    }
    array<double> t = array<double>::from_shape(shape);
    if (!std::getline(in, line)) throw io_error(path + ": values missing for " + name);
    std::istringstream vs(line);
    for (std::size_t i = 0; i < count; ++i)
      if (!(vs >> t.data()[i])) throw io_error(path + ": too few values for " + name);
    out.emplace(name, std::move(t));
  }
  return out;
}

/// Copies a golden tensor into a typed tensor of the same number of elements (shape of `dst`
/// is taken from `src` when ranks match).
template <class Dst>
void assign(Dst& dst, const array<double>& src) {
  if constexpr (requires { dst.resize(src.shape()); }) dst.resize(src.shape());
  std::copy(src.begin(), src.end(), dst.begin());
}

/// max |a - b| / max(max |b|, tiny): relative error with respect to the reference's scale.
template <class A>
double max_relative_error(const A& a, const array<double>& ref) {
  double num = 0, den = 1e-30;
  auto it = ref.begin();
  for (auto v : a) {
    num = std::max(num, std::abs(static_cast<double>(v) - *it));
    den = std::max(den, std::abs(*it));
    ++it;
  }
  return num / den;
}

}  // namespace cpc::testing
