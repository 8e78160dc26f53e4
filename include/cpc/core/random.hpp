#pragma once
/// Seeded, portable random numbers. The same seed gives the same numbers on every platform and
/// standard library (no std:: distributions, whose output is implementation-defined).
/// Generator: xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

#include "cpc/core/error.hpp"

namespace cpc {

/// Random generator with a 256-bit state that checkpoints can save and restore.
class rng {
 public:
  using state_type = std::array<std::uint64_t, 4>;

  /// Seeds the state from one 64-bit seed via splitmix64.
  explicit rng(std::uint64_t seed = 0) { reseed(seed); }

  /// Re-seeds as if newly constructed with `seed`.
  void reseed(std::uint64_t seed) {
    for (auto& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  /// Next 64 random bits.
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform value in [lo, hi).
  template <class T>
  T uniform(T lo, T hi) {
    return static_cast<T>(lo + (hi - lo) * uniform());
  }

  /// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
  /// Errors: throws `cpc::config_error` when n == 0.
  std::uint64_t uniform_int(std::uint64_t n) {
    if (n == 0) throw config_error("rng::uniform_int: expected n > 0, got 0");
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  /// Standard normal N(0, 1) by the Box-Muller transform (one value per call).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  /// Advances the state by 2^128 draws (xoshiro256's jump polynomial, Blackman & Vigna 2018), so
  /// that generators jumped 0, 1, 2, ... times from one state draw non-overlapping streams (one per
  /// process of a data-parallel run, `cpc/train/distributed.hpp`).
  void jump() {
    static constexpr std::array<std::uint64_t, 4> polynomial{0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL,
                                                             0xa9582618e03fc9aaULL, 0x39abdc4529b1661cULL};
    state_type jumped{};
    for (const std::uint64_t word : polynomial)
      for (int b = 0; b < 64; ++b) {
        if (word & (std::uint64_t{1} << b))
          for (std::size_t i = 0; i < jumped.size(); ++i) jumped[i] ^= s_[i];
        next();
      }
    s_ = jumped;
  }

  /// The full generator state, for checkpoints.
  const state_type& state() const { return s_; }
  /// Restores a state saved with `state()`.
  /// Errors: throws `cpc::config_error` for the all-zero state, which xoshiro cannot leave.
  void set_state(const state_type& s) {
    if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
      throw config_error("rng::set_state: expected a non-zero state, got all zeros");
    s_ = s;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  state_type s_{};
};

}  // namespace cpc
