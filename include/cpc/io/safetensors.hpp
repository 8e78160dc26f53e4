#pragma once
/// safetensors files: an 8-byte little-endian header length N, N bytes of JSON header
///   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
///    "__metadata__": {"<key>": "<value>", ...}}
/// padded with spaces, then the tensors' raw little-endian row-major bytes; offsets are relative to
/// the end of the header, and the tensors tile the data section exactly. Readable from PyTorch
/// (`safetensors.torch.load_file`) and from scripts/read_checkpoint.py (json + numpy).
/// This layer knows nothing about models; checkpoints build on it.
/// Source: the safetensors format specification (github.com/huggingface/safetensors, README).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/io/atomic_file.hpp"

namespace cpc {

static_assert(std::endian::native == std::endian::little,
              "cpc safetensors I/O writes native bytes and so needs a little-endian host");

/// Element types cpc reads and writes, with their safetensors names.
enum class dtype : std::uint8_t { f32, f64, i64, u64, i32, u8 };

/// Bytes per element.
constexpr std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32:
      return 4;
    case dtype::f64:
      return 8;
    case dtype::i64:
      return 8;
    case dtype::u64:
      return 8;
    case dtype::i32:
      return 4;
    case dtype::u8:
      return 1;
  }
  return 0;
}

/// The safetensors name: "F32", "F64", "I64", "U64", "I32", "U8".
constexpr std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f32:
      return "F32";
    case dtype::f64:
      return "F64";
    case dtype::i64:
      return "I64";
    case dtype::u64:
      return "U64";
    case dtype::i32:
      return "I32";
    case dtype::u8:
      return "U8";
  }
  return "?";
}

/// The dtype named `name`, or nothing for a name cpc does not support.
inline std::optional<dtype> parse_dtype(std::string_view name) {
  for (dtype t : {dtype::f32, dtype::f64, dtype::i64, dtype::u64, dtype::i32, dtype::u8})
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

/// Whether `t` holds floating-point values.
constexpr bool is_floating(dtype t) {
  return t == dtype::f32 || t == dtype::f64;
}

/// The dtype of a C++ element type (float, double, int64_t, uint64_t, int32_t, uint8_t).
template <class U>
constexpr dtype dtype_of() {
  if constexpr (std::is_same_v<U, float>)
    return dtype::f32;
  else if constexpr (std::is_same_v<U, double>)
    return dtype::f64;
  else if constexpr (std::is_same_v<U, std::int64_t>)
    return dtype::i64;
  else if constexpr (std::is_same_v<U, std::uint64_t>)
    return dtype::u64;
  else if constexpr (std::is_same_v<U, std::int32_t>)
    return dtype::i32;
  else if constexpr (std::is_same_v<U, std::uint8_t>)
    return dtype::u8;
  else
    static_assert(
        sizeof(U) == 0,
        "cpc safetensors: element type must be float, double, int64_t, uint64_t, int32_t or uint8_t");
}

/// String key/value pairs stored under "__metadata__".
using safetensors_metadata = std::map<std::string, std::string>;

/// A tensor to write: name, dtype, shape and a pointer to its row-major data (not owned; must stay
/// valid until the save returns). An empty shape is a 0-d tensor with one element.
struct tensor_ref {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::size_t> shape;
  const void* data = nullptr;
};

/// A `tensor_ref` over `data` with `shape` (row-major, contiguous).
template <class U>
tensor_ref make_tensor_ref(std::string name, std::vector<std::size_t> shape, const U* data) {
  return {std::move(name), dtype_of<U>(), std::move(shape), data};
}

/// A `tensor_ref` over a row-major xtensor container (`cpc::array<T>`, `cpc::tensor<T, N>`).
template <class C>
requires requires(const C& c) {
  c.data();
  c.shape();
}
tensor_ref make_tensor_ref(std::string name, const C& c) {
  using U = std::remove_cv_t<std::remove_pointer_t<decltype(c.data())>>;
  return {std::move(name), dtype_of<U>(), std::vector<std::size_t>(c.shape().begin(), c.shape().end()),
          c.data()};
}

namespace detail {
/// Product of the extents; nothing on overflow.
inline std::optional<std::uint64_t> element_count(const std::vector<std::size_t>& shape) {
  std::uint64_t n = 1;
  for (auto d : shape) {
    if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}
}  // namespace detail

/// The header bytes (JSON padded with spaces to a multiple of 8, so the data is 8-byte aligned)
/// for `tensors` laid out in the given order, with "__metadata__" first when not empty.
/// Errors: `cpc::config_error` for an empty, duplicate or reserved ("__metadata__") name, a null
/// pointer with a non-zero size, a size that overflows, or a name or metadata string that is not
/// valid UTF-8.
inline std::string safetensors_header(const std::vector<tensor_ref>& tensors,
                                      const safetensors_metadata& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& m = h["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  std::uint64_t offset = 0;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (t.name.empty()) throw config_error("safetensors: tensor name must not be empty");
    if (t.name == "__metadata__") throw config_error("safetensors: tensor name '__metadata__' is reserved");
    if (!names.insert(t.name).second)
      throw config_error("safetensors: duplicate tensor name '" + t.name + "'");
    const auto n = detail::element_count(t.shape);
    if (!n || *n > std::numeric_limits<std::uint64_t>::max() / dtype_size(t.type))
      throw config_error("safetensors: tensor '" + t.name + "': size of shape " + shape_string(t.shape) +
                         " overflows");
    if (t.data == nullptr && *n != 0) throw config_error("safetensors: tensor '" + t.name + "' has no data");
    const std::uint64_t bytes = *n * dtype_size(t.type);
    h[t.name] = {
        {"dtype", dtype_name(t.type)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string s;
  try {
    s = h.dump();
  } catch (const nlohmann::json::exception& e) {
    throw config_error(std::string("safetensors: cannot encode the header: ") + e.what());
  }
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}

/// Writes `tensors` (in the given order) and `metadata` to `path` as a safetensors file, atomically
/// (see `write_file_atomically`: on failure the old file stays and no temporary file remains).
/// Errors: `cpc::config_error` as `safetensors_header`; `cpc::io_error` naming the path and the
/// errno text when the file cannot be written.
inline void save_safetensors(const std::filesystem::path& path, const std::vector<tensor_ref>& tensors,
                             const safetensors_metadata& metadata = {}) {
  const std::string header = safetensors_header(tensors, metadata);
  write_file_atomically(path, [&](atomic_output& out) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(header.size()) >> (8 * i));
    out.write(len, 8);
    out.write(header.data(), header.size());
    for (const auto& t : tensors) out.write(t.data, *detail::element_count(t.shape) * dtype_size(t.type));
  });
}

/// Collects named tensors and metadata, then saves them with `save_safetensors`. Holds pointers
/// only: the tensors must stay alive and unchanged until `save` returns.
class safetensors_writer {
 public:
  /// Adds a tensor from a pointer and a shape (row-major). Returns *this.
  template <class U>
  safetensors_writer& add(std::string name, std::vector<std::size_t> shape, const U* data) {
    tensors_.push_back(make_tensor_ref(std::move(name), std::move(shape), data));
    return *this;
  }
  /// Adds a row-major xtensor container (`cpc::array<T>`, `cpc::tensor<T, N>`). Returns *this.
  template <class C>
  safetensors_writer& add(std::string name, const C& container) {
    tensors_.push_back(make_tensor_ref(std::move(name), container));
    return *this;
  }
  /// Sets one "__metadata__" entry. Returns *this.
  safetensors_writer& set_metadata(std::string key, std::string value) {
    metadata_[std::move(key)] = std::move(value);
    return *this;
  }
  /// Writes the file atomically. Errors: as `save_safetensors`.
  void save(const std::filesystem::path& path) const { save_safetensors(path, tensors_, metadata_); }

  const std::vector<tensor_ref>& tensors() const { return tensors_; }
  const safetensors_metadata& metadata() const { return metadata_; }

 private:
  std::vector<tensor_ref> tensors_;
  safetensors_metadata metadata_;
};

/// One tensor read from a file: dtype, shape and its raw little-endian bytes.
struct loaded_tensor {
  dtype type = dtype::f32;
  std::vector<std::size_t> shape;
  std::vector<std::byte> bytes;

  /// Number of elements (1 for a 0-d tensor).
  std::size_t size() const { return bytes.size() / dtype_size(type); }

  /// The elements converted to U by `static_cast`, row-major. Integer data converts to any U;
  /// floating-point data only to floating-point U.
  /// Errors: `cpc::io_error` when U is an integer type and the data are F32/F64 (the cast is
  /// undefined for NaN and out-of-range values, which a corrupt file can hold).
  template <class U>
  std::vector<U> values() const {
    if (std::is_integral_v<U> && is_floating(type))
      throw io_error("safetensors: cannot convert " + std::string(dtype_name(type)) + " data to integers");
    std::vector<U> out(size());
    switch (type) {
      case dtype::f32:
        convert<float>(out);
        break;
      case dtype::f64:
        convert<double>(out);
        break;
      case dtype::i64:
        convert<std::int64_t>(out);
        break;
      case dtype::u64:
        convert<std::uint64_t>(out);
        break;
      case dtype::i32:
        convert<std::int32_t>(out);
        break;
      case dtype::u8:
        convert<std::uint8_t>(out);
        break;
    }
    return out;
  }

 private:
  template <class S, class U>
  void convert(std::vector<U>& out) const {
    if constexpr (std::is_same_v<S, U>) {
      if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    } else if constexpr (std::is_integral_v<U> && std::is_floating_point_v<S>) {
      // Refused by values(); not instantiated as a cast.
    } else {
      for (std::size_t i = 0; i < out.size(); ++i) {
        S s;
        std::memcpy(&s, bytes.data() + i * sizeof(S), sizeof(S));
        out[i] = static_cast<U>(s);
      }
    }
  }
};

/// The contents of a safetensors file.
struct safetensors_file {
  std::filesystem::path path;
  std::map<std::string, loaded_tensor> tensors;
  safetensors_metadata metadata;

  /// Whether a tensor called `name` exists.
  bool contains(const std::string& name) const { return tensors.count(name) != 0; }
  /// The tensor called `name`. Errors: `cpc::io_error` "<path>: no tensor '<name>'".
  const loaded_tensor& at(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end())
      throw io_error("load_safetensors: " + path.string() + ": no tensor '" + name + "'");
    return it->second;
  }
};

/// Reads and validates a whole safetensors file.
/// Errors: `cpc::io_error` "load_safetensors: <path>: <reason>" when the file cannot be opened or
/// read, is shorter than 8 bytes, declares a header longer than the rest of the file, has a header
/// that is not a JSON object, names an unknown dtype, has a missing or malformed "dtype", "shape"
/// or "data_offsets", has offsets outside the data section, reversed, not matching shape x dtype
/// size, overlapping or leaving gaps, has bytes after the last tensor, or metadata values that
/// are not strings.
inline safetensors_file load_safetensors(const std::filesystem::path& path) {
  const auto fail = [&](const std::string& why) -> io_error {
    return io_error("load_safetensors: " + path.string() + ": " + why);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    throw fail("cannot open: " + std::generic_category().message(e));
  }
  std::error_code ec;
  const std::uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw fail("cannot read the file size: " + ec.message());
  if (file_size < 8)
    throw fail("not a safetensors file: it is " + std::to_string(file_size) +
               " bytes, shorter than the 8-byte header length");
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char*>(len), 8)) throw fail("cannot read the header length");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > file_size - 8)
    throw fail("not a safetensors file: header length " + std::to_string(n) + " exceeds the " +
               std::to_string(file_size - 8) + " bytes after the length field");
  std::string text(static_cast<std::size_t>(n), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) throw fail("cannot read the header");
  const std::uint64_t data_size = file_size - 8 - n;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1E999
    throw fail(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  struct entry {
    std::string name;
    std::uint64_t begin, end;
  };
  std::vector<entry> entries;
  safetensors_file out;
  out.path = path;
  const auto offsets_string = [](std::uint64_t b, std::uint64_t e) {
    return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
  };
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not a JSON object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) throw fail("__metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!v.is_object()) throw fail(where + "entry is not a JSON object");
    if (!v.contains("dtype") || !v["dtype"].is_string())
      throw fail(where + "missing or non-string \"dtype\"");
    const auto type_name = v["dtype"].get<std::string>();
    const auto type = parse_dtype(type_name);
    if (!type)
      throw fail(where + "unknown dtype '" + type_name + "' (supported: F32, F64, I64, U64, I32, U8)");
    if (!v.contains("shape") || !v["shape"].is_array()) throw fail(where + "missing or non-array \"shape\"");
    loaded_tensor t;
    t.type = *type;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned())
        throw fail(where + "shape " + v["shape"].dump() + " is not a list of non-negative integers");
      t.shape.push_back(d.get<std::size_t>());
    }
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw fail(where + "missing or malformed \"data_offsets\" (expected [begin, end])");
    const auto begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
    if (end < begin) throw fail(where + "data_offsets " + offsets_string(begin, end) + " are reversed");
    if (end > data_size)
      throw fail(where + "data_offsets " + offsets_string(begin, end) + " lie beyond the data section of " +
                 std::to_string(data_size) + " bytes");
    const auto count = detail::element_count(t.shape);
    if (!count || *count > data_size / dtype_size(t.type) || *count * dtype_size(t.type) != end - begin)
      throw fail(where + "data_offsets " + offsets_string(begin, end) + " hold " +
                 std::to_string(end - begin) + " bytes, but shape " + shape_string(t.shape) + " of " +
                 std::string(dtype_name(t.type)) + " needs " +
                 (count && *count <= std::numeric_limits<std::uint64_t>::max() / 8
                      ? std::to_string(*count * dtype_size(t.type))
                      : std::string("more than 2^64")));
    entries.push_back({name, begin, end});
    out.tensors.emplace(name, std::move(t));
  }

  std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t pos = 0;
  const entry* prev = nullptr;
  for (const auto& e : entries) {
    if (e.begin < pos)
      throw fail("tensors '" + prev->name + "' " + offsets_string(prev->begin, prev->end) + " and '" +
                 e.name + "' " + offsets_string(e.begin, e.end) + " overlap");
    if (e.begin > pos)
      throw fail(std::to_string(e.begin - pos) + " unused bytes before tensor '" + e.name + "' at offset " +
                 std::to_string(pos));
    pos = e.end;
    prev = &e;
  }
  if (pos != data_size)
    throw fail(std::to_string(data_size - pos) +
               " bytes of trailing data after the last tensor (data ends at " + std::to_string(pos) + " of " +
               std::to_string(data_size) + ")");

  for (const auto& e : entries) {
    auto& t = out.tensors[e.name];
    t.bytes.resize(static_cast<std::size_t>(e.end - e.begin));
    if (t.bytes.empty()) continue;
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    if (!in.read(reinterpret_cast<char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size())))
      throw fail("cannot read the data of tensor '" + e.name + "'");
  }
  return out;
}

/// Copies a loaded tensor into `dst` (a row-major xtensor container of floating or integer
/// elements) whose shape must equal the stored one. Floating-point data converts between F32 and
/// F64; integer data converts between integer types.
/// Errors: `cpc::shape_error` "<name>: expected [..], got [..]" (expected = dst's shape, got = the
/// file's); `cpc::io_error` when a floating-point tensor is loaded from integer data or back.
template <class C>
void load_into(const loaded_tensor& src, C& dst, std::string_view name) {
  using U = std::remove_cv_t<std::remove_pointer_t<decltype(dst.data())>>;
  if (is_floating(src.type) != std::is_floating_point_v<U>)
    throw io_error(std::string(name) + ": cannot load " + std::string(dtype_name(src.type)) +
                   " data into a " + (std::is_floating_point_v<U> ? "floating-point" : "integer") +
                   " tensor");
  const auto& s = dst.shape();
  if (!std::equal(s.begin(), s.end(), src.shape.begin(), src.shape.end()))
    throw shape_error(std::string(name) + ": expected " + shape_string(s) + ", got " +
                      shape_string(src.shape));
  const auto v = src.values<U>();
  std::copy(v.begin(), v.end(), dst.data());
}

/// A loaded tensor as a new `cpc::array<U>` of its stored shape (converted as `load_into`).
/// Errors: `cpc::io_error` as `load_into`.
template <class U>
array<U> to_array(const loaded_tensor& src, std::string_view name) {
  auto a = array<U>::from_shape(src.shape);
  load_into(src, a, name);
  return a;
}

}  // namespace cpc
