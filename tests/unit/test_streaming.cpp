// Streaming equals one pass, bit for bit, on the paper's model; and the cpu kernels under it give
// an output row that depends only on its inputs - not on where the row sits in the buffer, on the
// number of rows around it, or on the block / task / edge segment it falls in.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>
#include <cpc/model/context_stream.hpp>
#include <cpc/model/model.hpp>

#include <xtensor/xview.hpp>

#include <cstring>
#include <vector>

using namespace cpc;

namespace {

using paper_model = audio_model<presets::audio_paper, float>;

tensor2<float> random_audio(std::size_t batch, std::size_t samples, std::uint64_t seed) {
  rng gen(seed);
  tensor2<float> a = xt::zeros<float>({batch, samples});
  for (auto& v : a) v = static_cast<float>(gen.uniform(-0.5, 0.5));
  return a;
}

// Bitwise equality of two floats (NaN payloads and signed zeros included).
bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof(float)) == 0;
}

// Pushes `audio` through a context_stream in chunks of the given sizes (cycled until the audio is
// used up), finishes, and checks the concatenated contexts against model.encode bit for bit.
void check_stream(paper_model& m, const tensor2<float>& audio, const std::vector<std::size_t>& chunks) {
  const std::size_t batch = audio.shape()[0], samples = audio.shape()[1];
  tensor3<float> z, c_full;
  m.encode(audio, z, c_full);
  REQUIRE(c_full.shape()[1] == m.frames(samples));
  context_stream<paper_model> stream(m);
  std::vector<tensor3<float>> parts;
  std::size_t s0 = 0;
  for (std::size_t i = 0; s0 < samples; ++i) {
    const std::size_t len = std::min(chunks[i % chunks.size()], samples - s0);
    tensor2<float> chunk = xt::view(audio, xt::all(), xt::range(s0, s0 + len));
    s0 += len;
    parts.emplace_back();
    stream.push(chunk, parts.back());
  }
  parts.emplace_back();
  stream.finish(parts.back());
  std::size_t t0 = 0, mismatches = 0;
  float worst = 0;
  for (const auto& p : parts) {
    REQUIRE(p.shape()[0] == batch);
    REQUIRE(t0 + p.shape()[1] <= c_full.shape()[1]);
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t t = 0; t < p.shape()[1]; ++t)
        for (std::size_t j = 0; j < p.shape()[2]; ++j)
          if (!same_bits(p(b, t, j), c_full(b, t0 + t, j))) {
            ++mismatches;
            worst = std::max(worst, std::abs(p(b, t, j) - c_full(b, t0 + t, j)));
          }
    t0 += p.shape()[1];
  }
  CHECK(t0 == c_full.shape()[1]);
  CAPTURE(worst);
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE(
    "context_stream on the paper preset: 480 samples pushed as 320 + 160 equal model.encode bit for bit") {
  paper_model m;
  check_stream(m, random_audio(1, 480, 1), {320, 160});
}

TEST_CASE("context_stream on the paper preset: odd chunk sizes equal model.encode bit for bit") {
  paper_model m;
  const auto audio = random_audio(1, 4321, 2);
  for (const std::vector<std::size_t>& chunks :
       std::vector<std::vector<std::size_t>>{{1}, {7}, {333}, {1000}, {1, 7, 333, 1000, 0, 161}}) {
    CAPTURE(chunks.front());
    CAPTURE(chunks.size());
    check_stream(m, audio, chunks);
  }
}

TEST_CASE("context_stream on the paper preset: batch 2 equals model.encode bit for bit") {
  paper_model m;
  const auto audio = random_audio(2, 3217, 3);
  check_stream(m, audio, {320, 160});
  check_stream(m, audio, {333, 7, 1000});
}

namespace {

// Runs the cpu conv1d forward on x `[batch, t_in, c_in]`.
std::vector<float> conv_forward(const ops::conv1d_shape& s, const std::vector<float>& x,
                                const std::vector<float>& w, const std::vector<float>& bias) {
  ops::conv1d_workspace<cpu, float> ws;
  std::vector<float> y(s.batch * s.t_out() * s.c_out, NAN);
  ops::conv1d_forward<cpu>(
      ops::conv1d_forward_args<float>{
          .shape = s, .x = x.data(), .weight = w.data(), .bias = bias.data(), .y = y.data()},
      ws);
  return y;
}

std::vector<float> random_vector(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return v;
}

}  // namespace

TEST_CASE("ops::conv1d_forward (cpu): an output row is the same bits wherever its receptive field sits") {
  // {c_in, c_out, kernel, stride, padding}: the paper's first layer (direct loop), the direct loop
  // with leftover channels and the widest direct window, the GEMM path (paper's later layers, narrower).
  struct layer {
    std::size_t c_in, c_out, kernel, stride, padding;
  };
  const layer layers[] = {{1, 512, 10, 5, 3}, {1, 40, 10, 5, 3}, {4, 33, 4, 2, 1},
                          {1, 7, 3, 1, 1},    {64, 96, 8, 4, 2}, {32, 40, 4, 2, 1}};
  rng gen(11);
  for (const auto& l : layers) {
    CAPTURE(l.c_in);
    CAPTURE(l.c_out);
    CAPTURE(l.kernel);
    const ops::conv1d_shape long_shape{.batch = 1,
                                       .t_in = 1300 * l.stride + 3,  // > 1 task block of 512 frames
                                       .c_in = l.c_in,
                                       .c_out = l.c_out,
                                       .kernel = l.kernel,
                                       .stride = l.stride,
                                       .padding = l.padding};
    const auto x = random_vector(long_shape.t_in * l.c_in, gen);
    const auto w = random_vector(l.c_out * l.c_in * l.kernel, gen);
    const auto bias = random_vector(l.c_out, gen);
    const auto y = conv_forward(long_shape, x, w, bias);
    const auto n = static_cast<std::ptrdiff_t>(long_shape.t_in);
    std::size_t compared = 0, mismatches = 0;
    // Short inputs: samples [a, a + len) of the long one (a a multiple of the stride) as batch item
    // 1 of 2 (item 0 is other data), so output m of the short input is output a / stride + m of the
    // long one wherever its window reads the same samples or padding in both.
    for (int trial = 0; trial < 40; ++trial) {
      const std::size_t a = gen.uniform_int(long_shape.t_in / l.stride) * l.stride;
      const std::size_t len = std::min(
          long_shape.t_in - a, l.kernel + gen.uniform_int(trial < 20 ? 12 * l.stride : 700 * l.stride));
      if (len + 2 * l.padding < l.kernel) continue;
      ops::conv1d_shape short_shape = long_shape;
      short_shape.batch = 2;
      short_shape.t_in = len;
      std::vector<float> xs = random_vector(2 * len * l.c_in, gen);
      std::copy_n(x.begin() + static_cast<std::ptrdiff_t>(a * l.c_in), len * l.c_in,
                  xs.begin() + static_cast<std::ptrdiff_t>(len * l.c_in));
      const auto ys = conv_forward(short_shape, xs, w, bias);
      const std::size_t t_short = short_shape.t_out(), t_long = long_shape.t_out();
      for (std::size_t m = 0; m < t_short; ++m) {
        const std::size_t t = a / l.stride + m;
        if (t >= t_long) break;
        bool same_window = true;
        for (std::size_t k = 0; k < l.kernel; ++k) {
          const auto i =
              static_cast<std::ptrdiff_t>(m * l.stride + k) - static_cast<std::ptrdiff_t>(l.padding);
          const auto u = static_cast<std::ptrdiff_t>(a) + i;
          const bool in_short = i >= 0 && i < static_cast<std::ptrdiff_t>(len), in_long = u >= 0 && u < n;
          same_window = same_window && in_short == in_long;
        }
        if (!same_window) continue;
        ++compared;
        for (std::size_t o = 0; o < l.c_out; ++o)
          if (!same_bits(ys[(t_short + m) * l.c_out + o], y[t * l.c_out + o])) ++mismatches;
      }
    }
    CHECK(compared > 1000);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("ops::layer_norm_forward (cpu): a row is the same bits wherever it sits in the buffer") {
  rng gen(12);
  for (std::size_t cols : {512u, 20u, 37u, 7u}) {
    for (bool affine : {false, true}) {
      CAPTURE(cols);
      CAPTURE(affine);
      const std::size_t rows = 200;
      const auto x = random_vector(rows * cols, gen);
      const auto weight = random_vector(cols, gen), bias = random_vector(cols, gen);
      auto run = [&](const float* xs, std::size_t n) {
        std::vector<float> y(n * cols, NAN);
        ops::layer_norm_forward<cpu>(
            ops::layer_norm_forward_args<float>{.rows = n,
                                                .cols = cols,
                                                .relu = false,
                                                .x = xs,
                                                .weight = affine ? weight.data() : nullptr,
                                                .bias = affine ? bias.data() : nullptr,
                                                .y = y.data()});
        return y;
      };
      const auto y = run(x.data(), rows);
      std::size_t mismatches = 0;
      // Row r alone, as row 0 of a fresh (aligned) buffer.
      for (std::size_t r = 0; r < rows; ++r) {
        const std::vector<float> one(x.begin() + static_cast<std::ptrdiff_t>(r * cols),
                                     x.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
        const auto y1 = run(one.data(), 1);
        for (std::size_t j = 0; j < cols; ++j)
          if (!same_bits(y1[j], y[r * cols + j])) ++mismatches;
      }
      CHECK(mismatches == 0);
    }
  }
}
