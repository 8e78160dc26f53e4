// Option checks shared by the example programs' command lines (CLI11 validators with one readable
// message each: CLI11 2.1 reads "-1" into an unsigned option as 2^64 - 1, saturates past it
// silently, and prints PositiveNumber's range as a 300-digit number).
#pragma once

#include <CLI/CLI.hpp>

#include <cpc/core/error.hpp>
#include <cpc/core/precision.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace cpc_examples {

/// A whole number >= `min` that fits in 64 bits, digits only (no sign). The message names the
/// bound: "expected a whole number >= <min>, got '<v>'".
inline CLI::Validator whole_number(unsigned long long min = 0) {
  return CLI::Validator(
      [min](std::string& v) -> std::string {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          return "expected a whole number >= " + std::to_string(min) + ", got '" + v + "'";
        unsigned long long x = 0;
        try {
          x = std::stoull(v);
        } catch (const std::out_of_range&) {
          return "expected a whole number <= 18446744073709551615, got '" + v + "'";
        }
        if (x < min) return "expected a whole number >= " + std::to_string(min) + ", got '" + v + "'";
        return {};
      },
      min == 0 ? "UINT" : "UINT>=" + std::to_string(min));
}

/// A finite number > 0 (or >= 0 with `zero_ok`): "expected a number > 0, got '<v>'".
inline CLI::Validator positive_number(bool zero_ok = false) {
  return CLI::Validator(
      [zero_ok](std::string& v) -> std::string {
        double x = 0;
        std::size_t used = 0;
        try {
          x = std::stod(v, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != v.size() || !std::isfinite(x) || x < 0 || (x == 0 && !zero_ok))
          return std::string("expected a number ") + (zero_ok ? ">= 0" : "> 0") + ", got '" + v + "'";
        return {};
      },
      zero_ok ? "NUMBER>=0" : "NUMBER>0");
}

/// Adds `--matmul-precision fp32|bf16` (the convolutions' products, cpc/core/precision.hpp) to
/// `c`, stored in `value` (default fp32); `apply_matmul_precision` checks and sets it.
inline CLI::Option* add_matmul_precision_option(CLI::App* c, std::string& value) {
  return c
      ->add_option("--matmul-precision", value,
                   "the convolutions' matrix products: fp32, or bf16 (operands rounded to bfloat16, fp32 "
                   "sums; Intel AMX, Sapphire Rapids or later)")
      ->capture_default_str();
}

/// Parses `value` and sets cpc's matmul precision for the process.
/// Errors: cpc::config_error "--matmul-precision: expected fp32 or bf16, got '<value>'", or
/// "--matmul-precision: bf16 matmul precision is unavailable: <why>" (the build, CPU or kernel).
inline void apply_matmul_precision(const std::string& value) {
  const cpc::matmul_precision p = cpc::parse_matmul_precision(value, "--matmul-precision");
  try {
    cpc::set_matmul_precision(p);
  } catch (const cpc::config_error& e) {  // bf16 unavailable: the option names it
    throw cpc::config_error(std::string("--matmul-precision: ") + e.what());
  }
}

}  // namespace cpc_examples
