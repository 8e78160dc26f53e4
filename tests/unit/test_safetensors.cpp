#include <doctest/doctest.h>

#include <cpc/io/atomic_file.hpp>
#include <cpc/io/safetensors.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <xtensor/xmath.hpp>

using namespace cpc;
namespace fs = std::filesystem;

namespace {

/// A fresh empty directory, removed with everything in it at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cpc_test_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A file made of an 8-byte length (`length`, default: the header's size), `header` and `data`.
std::string raw_file(const std::string& header, const std::string& data, std::uint64_t length = ~0ULL) {
  if (length == ~0ULL) length = header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + header + data;
}

/// The message of the io_error that loading `bytes` from a file throws.
std::string load_error(const temp_dir& dir, const std::string& bytes) {
  const auto p = dir.path / "bad.safetensors";
  write_bytes(p, bytes);
  try {
    load_safetensors(p);
  } catch (const io_error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, and metadata") {
  temp_dir dir;
  array<float> f32 = {{1.5f, -2.0f, 3.25f}, {0.0f, std::numeric_limits<float>::max(), -1e-30f}};
  array<double> f64 = {1.0 / 3.0, -std::numeric_limits<double>::min(), 1e300};
  std::vector<std::int64_t> i64 = {-(1LL << 62), 0, 7, 1LL << 40};
  std::vector<std::uint64_t> u64 = {~0ULL, 1, 0};
  std::vector<std::int32_t> i32 = {-5, 2147483647};
  std::vector<std::uint8_t> u8 = {0, 255, 7};
  array<double> scalar = 2.5;  // 0-d: shape [], one element
  array<float> empty = array<float>::from_shape({0, 3});
  tensor<float, 3> t3 = xt::reshape_view(xt::arange<float>(24), {2, 3, 4});

  safetensors_writer w;
  w.add("enc.f32", f32)
      .add("f64", f64)
      .add("i64", {2, 2}, i64.data())
      .add("u64", {3}, u64.data())
      .add("i32", {1, 2}, i32.data())
      .add("u8", {3}, u8.data())
      .add("scalar", scalar)
      .add("empty", empty)
      .add("t3", t3)
      .set_metadata("format", "cpc")
      .set_metadata("step", "42")
      .set_metadata("unicode", "Grüße");
  const auto path = dir.path / "all.safetensors";
  w.save(path);

  const auto file = load_safetensors(path);
  CHECK(file.tensors.size() == 9);
  CHECK(file.metadata == safetensors_metadata{{"format", "cpc"}, {"step", "42"}, {"unicode", "Grüße"}});
  CHECK(file.at("enc.f32").type == dtype::f32);
  CHECK(file.at("enc.f32").shape == std::vector<std::size_t>{2, 3});
  CHECK(to_array<float>(file.at("enc.f32"), "enc.f32") == f32);
  CHECK(file.at("f64").type == dtype::f64);
  CHECK(to_array<double>(file.at("f64"), "f64") == f64);
  CHECK(file.at("i64").type == dtype::i64);
  CHECK(file.at("i64").shape == std::vector<std::size_t>{2, 2});
  CHECK(file.at("i64").values<std::int64_t>() == i64);
  CHECK(file.at("u64").values<std::uint64_t>() == u64);
  CHECK(file.at("i32").type == dtype::i32);
  CHECK(file.at("i32").values<std::int32_t>() == i32);
  CHECK(file.at("u8").type == dtype::u8);
  CHECK(file.at("u8").values<std::uint8_t>() == u8);
  CHECK(file.at("scalar").shape.empty());
  CHECK(file.at("scalar").values<double>() == std::vector<double>{2.5});
  CHECK(file.at("empty").shape == std::vector<std::size_t>{0, 3});
  CHECK(file.at("empty").size() == 0);
  tensor<float, 3> t3_back = xt::zeros<float>({2, 3, 4});
  load_into(file.at("t3"), t3_back, "t3");
  CHECK(t3_back == t3);
  CHECK_THROWS_WITH_AS(file.at("missing"),
                       ("load_safetensors: " + path.string() + ": no tensor 'missing'").c_str(), io_error);
  CHECK(dir.listing() == std::vector<std::string>{"all.safetensors"});
}

TEST_CASE("safetensors: byte layout follows the format (length, padded JSON header, tiled data)") {
  temp_dir dir;
  std::vector<float> a = {1, 2, 3};
  std::vector<std::int64_t> b = {-1};
  const auto path = dir.path / "layout.safetensors";
  save_safetensors(path, {make_tensor_ref("a", {3}, a.data()), make_tensor_ref("b", {1, 1}, b.data())},
                   {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 12 + 8);
  CHECK(bytes[8] == '{');
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"] == nlohmann::json{{"k", "v"}});
  CHECK(header["a"] == nlohmann::json{{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 12}}});
  CHECK(header["b"] == nlohmann::json{{"dtype", "I64"}, {"shape", {1, 1}}, {"data_offsets", {12, 20}}});
  float a1;
  std::memcpy(&a1, bytes.data() + 8 + n + 4, 4);
  CHECK(a1 == 2.0f);
  // No metadata: no "__metadata__" key.
  save_safetensors(path, {make_tensor_ref("a", {3}, a.data())});
  CHECK(load_safetensors(path).metadata.empty());
  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
}

TEST_CASE("safetensors: malformed files throw io_error naming the file and the reason") {
  temp_dir dir;
  const std::string prefix = "load_safetensors: " + (dir.path / "bad.safetensors").string() + ": ";
  const std::string f32x2(8, '\0');
  CHECK(load_error(dir, "12345") ==
        prefix + "not a safetensors file: it is 5 bytes, shorter than the 8-byte header length");
  CHECK(load_error(dir, raw_file("{}", "", 100)) ==
        prefix + "not a safetensors file: header length 100 exceeds the 2 bytes after the length field");
  CHECK(load_error(dir, raw_file("{}", "", ~0ULL - 1)) ==
        prefix +
            "not a safetensors file: header length 18446744073709551614 exceeds the 2 bytes after the length "
            "field");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": )", ""))
            .starts_with(prefix + "header is not valid JSON ("));
  CHECK(load_error(dir, raw_file("[1, 2]", "")) == prefix + "header is not a JSON object");
  CHECK(
      load_error(dir, raw_file(R"({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", "1234")) ==
      prefix + "tensor 'a': unknown dtype 'F16' (supported: F32, F64, I64, U64, I32, U8)");
  CHECK(load_error(dir, raw_file(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", f32x2)) ==
        prefix + "tensor 'a': missing or non-string \"dtype\"");
  CHECK(
      load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", f32x2)) ==
      prefix + "tensor 'a': shape [-2] is not a list of non-negative integers");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [2]}})", f32x2)) ==
        prefix + "tensor 'a': missing or malformed \"data_offsets\" (expected [begin, end])");
  CHECK(
      load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}})", f32x2)) ==
      prefix + "tensor 'a': data_offsets [0, 16] lie beyond the data section of 8 bytes");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
                                 f32x2)) == prefix + "tensor 'a': data_offsets [8, 0] are reversed");
  CHECK(
      load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", f32x2)) ==
      prefix + "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296],
                                     "data_offsets": [0, 8]}})",
                                 f32x2))
            .starts_with(prefix +
                         "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [4294967296, 4294967296]"));
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                 std::string(12, '\0'))) ==
        prefix + "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                     "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                                 std::string(12, '\0'))) ==
        prefix + "4 unused bytes before tensor 'b' at offset 4");
  CHECK(load_error(dir, raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                                 f32x2 + "junk")) ==
        prefix + "4 bytes of trailing data after the last tensor (data ends at 8 of 12)");
  CHECK(load_error(dir, raw_file(R"({"__metadata__": {"step": 3}})", "")) ==
        prefix + "__metadata__ value of 'step' is not a string");
  CHECK(load_error(dir, raw_file(R"({"a": [1]})", "")) == prefix + "tensor 'a': entry is not a JSON object");
  // A valid hand-written file with trailing header spaces and an empty tensor loads.
  const auto p = dir.path / "ok.safetensors";
  write_bytes(p, raw_file(R"({"e": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]},
                              "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}   )",
                          f32x2));
  const auto ok = load_safetensors(p);
  CHECK(ok.tensors.size() == 2);
  CHECK(ok.at("a").values<float>() == std::vector<float>{0, 0});
  const auto missing = dir.path / "missing.safetensors";
  CHECK_THROWS_WITH_AS(
      load_safetensors(missing),
      ("load_safetensors: " + missing.string() + ": cannot open: No such file or directory").c_str(),
      io_error);
}

TEST_CASE("safetensors: bad tensors to write throw config_error before any file is touched") {
  temp_dir dir;
  const auto path = dir.path / "ckpt.safetensors";
  write_bytes(path, "old");
  std::vector<float> a = {1, 2};
  CHECK_THROWS_WITH_AS(
      save_safetensors(path, {make_tensor_ref("a", {2}, a.data()), make_tensor_ref("a", {1}, a.data())}),
      "safetensors: duplicate tensor name 'a'", config_error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {make_tensor_ref("__metadata__", {2}, a.data())}),
                       "safetensors: tensor name '__metadata__' is reserved", config_error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {make_tensor_ref<float>("n", {2}, nullptr)}),
                       "safetensors: tensor 'n' has no data", config_error);
  CHECK_THROWS_AS(save_safetensors(path, {make_tensor_ref("a", {2}, a.data())}, {{"bad", "\xff\xfe"}}),
                  config_error);
  CHECK(read_bytes(path) == "old");
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("atomic write: failures leave the old file untouched and no temporary file behind") {
  temp_dir dir;
  std::vector<double> v = {1, 2, 3};
  const std::vector<tensor_ref> tensors = {make_tensor_ref("v", {3}, v.data())};

  SUBCASE("parent directory is a regular file") {
    write_bytes(dir.path / "plain", "x");
    const auto path = dir.path / "plain" / "ckpt.safetensors";
    CHECK_THROWS_WITH_AS(
        save_safetensors(path, tensors),
        doctest::Contains(
            ("write_file_atomically: " + path.string() + ": cannot create temporary file '").c_str()),
        io_error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, tensors), doctest::Contains("': Not a directory"), io_error);
    CHECK(dir.listing() == std::vector<std::string>{"plain"});
  }
  SUBCASE("missing directory") {
    const auto path = dir.path / "nope" / "ckpt.safetensors";
    CHECK_THROWS_WITH_AS(save_safetensors(path, tensors), doctest::Contains("No such file or directory"),
                         io_error);
  }
  SUBCASE("target is a non-empty directory: the rename fails after the data was written") {
    const auto path = dir.path / "ckpt.safetensors";
    fs::create_directories(path);
    write_bytes(path / "inside", "keep");
    CHECK_THROWS_WITH_AS(
        save_safetensors(path, tensors),
        doctest::Contains(("write_file_atomically: " + path.string() + ": cannot rename '").c_str()),
        io_error);
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
    CHECK(read_bytes(path / "inside") == "keep");
  }
  SUBCASE("the writer throws midway") {
    const auto path = dir.path / "ckpt.safetensors";
    save_safetensors(path, tensors, {{"version", "old"}});
    const std::string old = read_bytes(path);
    CHECK_THROWS_WITH_AS(write_file_atomically(path,
                                               [](atomic_output& out) {
                                                 out.write("partial", 7);
                                                 throw std::runtime_error("disk on fire");
                                               }),
                         "disk on fire", std::runtime_error);
    CHECK(read_bytes(path) == old);
    CHECK(load_safetensors(path).metadata.at("version") == "old");
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
  }
  SUBCASE("success replaces the old file, relative paths work") {
    const auto path = dir.path / "ckpt.safetensors";
    write_bytes(path, "old contents");
    v[0] = 9;
    save_safetensors(path, tensors, {{"version", "new"}});
    const auto f = load_safetensors(path);
    CHECK(f.metadata.at("version") == "new");
    CHECK(f.at("v").values<double>() == std::vector<double>{9, 2, 3});
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
    const auto cwd = fs::current_path();
    fs::current_path(dir.path);
    save_safetensors("rel.safetensors", tensors);
    fs::current_path(cwd);
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors", "rel.safetensors"});
  }
}

TEST_CASE("load_into: shape and dtype checks name the tensor; float and double convert") {
  temp_dir dir;
  array<double> w = {{1, 2, 3}, {4, 5, 6}};
  std::vector<std::int64_t> steps = {7};
  const auto path = dir.path / "p.safetensors";
  safetensors_writer().add("enc.w", w).add("steps", {}, steps.data()).save(path);
  const auto f = load_safetensors(path);

  array<float> wf = array<float>::from_shape({2, 3});
  load_into(f.at("enc.w"), wf, "enc.w");
  CHECK(wf == array<float>{{1, 2, 3}, {4, 5, 6}});
  array<float> wrong = array<float>::from_shape({3, 2});
  CHECK_THROWS_WITH_AS(load_into(f.at("enc.w"), wrong, "enc.w"), "enc.w: expected [3, 2], got [2, 3]",
                       shape_error);
  tensor<double, 1> flat = xt::zeros<double>({6});
  CHECK_THROWS_WITH_AS(load_into(f.at("enc.w"), flat, "enc.w"), "enc.w: expected [6], got [2, 3]",
                       shape_error);
  array<float> s = array<float>::from_shape({});
  CHECK_THROWS_WITH_AS(load_into(f.at("steps"), s, "steps"),
                       "steps: cannot load I64 data into a floating-point tensor", io_error);
  CHECK(f.at("steps").values<std::uint64_t>() == std::vector<std::uint64_t>{7});
}

TEST_CASE("scripts/read_checkpoint.py reads a file written from C++ (json + numpy only)") {
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  if (std::system((python + " -c 'import numpy' >/dev/null 2>&1").c_str()) != 0) {
    MESSAGE("skipped: " << python << " with numpy not found");
    return;
  }
  temp_dir dir;
  array<float> w = {{3, 4}, {0, 0}};  // norm 5
  std::vector<std::int64_t> step = {42};
  std::vector<std::uint8_t> bytes = {1, 2, 2};  // norm 3
  const auto path = dir.path / "ckpt.safetensors";
  safetensors_writer()
      .add("encoder.conv0.weight", w)
      .add("step", {}, step.data())
      .add("flags", {3}, bytes.data())
      .set_metadata("cpc.format", "test")
      .save(path);
  const std::string script = std::string(CPC_SOURCE_DIR) + "/scripts/read_checkpoint.py";
  auto run = [&](const fs::path& file, int& status) {
    FILE* p = ::popen((python + " " + script + " " + file.string() + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    status = ::pclose(p);
    return out;
  };
  int status = -1;
  const std::string out = run(path, status);
  INFO(out);
  CHECK(status == 0);
  CHECK(out.find("3 tensors") != std::string::npos);
  auto line_of = [&](const std::string& name) {
    std::istringstream is(out);
    for (std::string line; std::getline(is, line);)
      if (line.find("  " + name + " ") != std::string::npos) return line;
    return std::string();
  };
  const auto wl = line_of("encoder.conv0.weight");
  CHECK(wl.find("F32") != std::string::npos);
  CHECK(wl.find("[2, 2]") != std::string::npos);
  CHECK(wl.find("norm=5 ") != std::string::npos);
  CHECK(wl.find("min=0 max=4") != std::string::npos);
  CHECK(line_of("step").find("I64   []") != std::string::npos);
  CHECK(line_of("step").find("norm=42") != std::string::npos);
  CHECK(line_of("flags").find("norm=3 ") != std::string::npos);
  CHECK(out.find("cpc.format = test") != std::string::npos);

  const auto bad = dir.path / "bad.safetensors";
  write_bytes(bad, raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                            std::string(12, '\0')));
  const std::string bad_out = run(bad, status);
  CHECK(status != 0);
  CHECK(bad_out.find("4 bytes of trailing data") != std::string::npos);
}
