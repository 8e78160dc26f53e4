#pragma once
/// Run-time check that a program uses the vector instructions of the CPU it runs on. cpc's
/// kernels (Eigen, xsimd, the register-blocked GEMM) are compiled for the instruction set the
/// compiler targets, not for the running CPU: a build for baseline x86-64 (no `-march` flag) on an
/// AVX-512 machine trains about 4x slower (issue 20: 2.6-3.3 s per step of the paper's model vs
/// 0.66-0.74 s with `-march=native`, same losses). `warn_if_cpu_features_unused()` says so once
/// per process, with the flag to add. Source: issue 20 "Full speed in the user's own project".
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <ostream>
#include <string>
#include <string_view>

namespace cpc {

/// The x86 vector extensions that decide cpc's speed. Elsewhere (non-x86) all are false.
struct cpu_features {
  bool avx512f = false;  ///< AVX-512 Foundation (16 floats per register)
  bool avx2 = false;     ///< AVX2 (8 floats per register, integer ops)
  bool fma = false;      ///< fused multiply-add (FMA3)
  friend bool operator==(const cpu_features&, const cpu_features&) = default;
};

/// The extensions the including translation unit is compiled for, from the compiler's macros
/// `__AVX512F__`, `__AVX2__` and `__FMA__` (set by `-march=native`, `-mavx2`, ...).
constexpr cpu_features compiled_cpu_features() noexcept {
  cpu_features f;
#if defined(__AVX512F__)
  f.avx512f = true;
#endif
#if defined(__AVX2__)
  f.avx2 = true;
#endif
#if defined(__FMA__)
  f.fma = true;
#endif
  return f;
}

/// The extensions the running CPU (and OS) supports, from GCC/Clang's `__builtin_cpu_supports`;
/// all false on other architectures or compilers.
inline cpu_features running_cpu_features() noexcept {
  cpu_features f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  f.avx512f = __builtin_cpu_supports("avx512f") != 0;
  f.avx2 = __builtin_cpu_supports("avx2") != 0;
  f.fma = __builtin_cpu_supports("fma") != 0;
#endif
  return f;
}

/// Names of the extensions `cpu` has and `compiled` lacks, comma-separated, widest first (e.g.
/// "AVX-512F, AVX2, FMA"); empty when the build uses everything the CPU has.
inline std::string unused_cpu_features(const cpu_features& compiled, const cpu_features& cpu) {
  std::string out;
  const auto add = [&](bool missing, const char* name) {
    if (!missing) return;
    if (!out.empty()) out += ", ";
    out += name;
  };
  add(cpu.avx512f && !compiled.avx512f, "AVX-512F");
  add(cpu.avx2 && !compiled.avx2, "AVX2");
  add(cpu.fma && !compiled.fma, "FMA");
  return out;
}

/// The one-line warning for `unused_cpu_features(compiled, cpu)` (without a newline); empty
/// when nothing is unused. Names the flag to add and how to silence it.
inline std::string cpu_features_warning(const cpu_features& compiled, const cpu_features& cpu) {
  const std::string unused = unused_cpu_features(compiled, cpu);
  if (unused.empty()) return {};
  return "cpc: warning: this program was compiled without " + unused +
         ", which this CPU has, so training and encoding run several times slower; recompile with "
         "-march=native (CMake: link cpc::native; cpc's own programs: -DCPC_NATIVE=ON) or set "
         "CPC_NO_CPU_WARNING=1 to silence this";
}

namespace detail {
/// Whether the environment variable `name` is set to something other than "" or "0".
inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string_view(v) != "" && std::string_view(v) != "0";
}

/// The once-per-process logic of `warn_if_cpu_features_unused`, with its state passed in (tests).
/// Prints the warning to `os` and returns true when something is unused, `done` was false and
/// CPC_NO_CPU_WARNING is not set; sets `done` whenever it decides (so a silenced process stays
/// silent).
inline bool warn_once(std::atomic<bool>& done, std::ostream& os, const cpu_features& compiled,
                      const cpu_features& cpu) {
  if (env_flag("CPC_NO_CPU_WARNING")) return false;
  const std::string message = cpu_features_warning(compiled, cpu);
  if (message.empty() || done.exchange(true)) return false;
  os << message << std::endl;
  return true;
}

inline std::atomic<bool>& cpu_warning_done() {
  static std::atomic<bool> done{false};
  return done;
}
}  // namespace detail

/// Prints `cpu_features_warning(compiled_cpu_features(), running_cpu_features())` to `os` (one
/// line, default stderr) the first time it is called in a process with something to say; later
/// calls print nothing. Returns whether it printed. Silenced by the environment variable
/// `CPC_NO_CPU_WARNING` (any value but "" or "0") or by `silence_cpu_warning()`. Thread-safe.
/// The compiled set is that of the translation unit the linker keeps for this inline function:
/// compile every file of a program with the same `-march`. cpc's programs call it at start-up.
inline bool warn_if_cpu_features_unused(std::ostream& os = std::cerr) {
  return detail::warn_once(detail::cpu_warning_done(), os, compiled_cpu_features(), running_cpu_features());
}

/// Turns `warn_if_cpu_features_unused()` off for the rest of the process (e.g. for a portable
/// binary built for baseline x86-64 on purpose).
inline void silence_cpu_warning() noexcept {
  detail::cpu_warning_done().store(true);
}

}  // namespace cpc
