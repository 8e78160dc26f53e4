#pragma once
/// The precision of the convolutions' matrix products on the CPU: fp32 (the default, and the
/// precision of every test but the bf16 path's own) or bf16 (inputs rounded to bfloat16, products summed in
/// fp32, on Intel AMX tiles; master weights, activations, gradients and the optimiser stay fp32).
///
/// What bf16 changes: the convolutions of the encoders (`conv1d`, `conv2d`: forward, d input and
/// d weight) round both operands of their GEMM to bf16 (round to nearest even) before multiplying;
/// each product is exact in fp32 and the sums are fp32. The recurrent autoregressors, the
/// prediction heads and the InfoNCE scores stay fp32. Results remain bit-identical for any thread
/// count. Measured speed and probe accuracies: README "Performance", docs/performance.md.
///
/// Why AMX and not AVX512-BF16 `vdpbf16ps`: on the Xeon this was written on, `vdpbf16ps` ran at
/// half the fp32 FMA rate (119 vs 243 GFLOP/s per core, `bench_peak`), so it cannot speed up an
/// fp32 GEMM; an AMX `tdpbf16ps` tile product ran at 3.5 TFLOP/s per core.
/// Source: issue 14 ("an optional bf16 compute path for the large GEMMs, off by default"); the
/// instructions' semantics: Intel SDM (TDPBF16PS, VCVTNE2PS2BF16).
#include <atomic>
#include <string>
#include <string_view>

#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

#include "cpc/core/error.hpp"

// GCC spells the AMX macros __AMX_TILE__ / __AMX_BF16__, clang 14 __AMXTILE__ / __AMXBF16__.
#if (defined(__AMX_TILE__) || defined(__AMXTILE__)) && (defined(__AMX_BF16__) || defined(__AMXBF16__)) && \
    defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__linux__)
/// 1 when this translation unit is compiled with the instructions of the bf16 path (AMX-TILE,
/// AMX-BF16, AVX512-BF16: `-march=sapphirerapids` or later, or `-march=native` on such a CPU).
#define CPC_HAVE_AMX_BF16 1
#else
#define CPC_HAVE_AMX_BF16 0
#endif

namespace cpc {

/// Precision of the convolutions' matrix products (see the file comment).
enum class matmul_precision {
  fp32,  ///< fp32 operands and sums (default)
  bf16,  ///< bf16 operands, fp32 sums (AMX); fp32 everywhere else
};

/// "fp32" or "bf16".
constexpr std::string_view to_string(matmul_precision p) noexcept {
  return p == matmul_precision::bf16 ? "bf16" : "fp32";
}

/// Parses "fp32" or "bf16". Errors: `cpc::config_error` "<what>: expected fp32 or bf16, got
/// '<text>'" (`what` names the setting, e.g. a command-line option).
inline matmul_precision parse_matmul_precision(std::string_view text,
                                               std::string_view what = "matmul precision") {
  if (text == "fp32") return matmul_precision::fp32;
  if (text == "bf16") return matmul_precision::bf16;
  throw config_error(std::string(what) + ": expected fp32 or bf16, got '" + std::string(text) + "'");
}

namespace detail {
// Asks Linux once per process for the AMX tile-data state (arch_prctl ARCH_REQ_XCOMP_PERM); the
// empty string on success, else why not.
inline const std::string& request_amx_permission() {
#if CPC_HAVE_AMX_BF16
  static const std::string reason = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    // CPUID leaf 7: sub-leaf 0 EDX bit 22 AMX-BF16, bit 24 AMX-TILE; sub-leaf 1 EAX bit 5 AVX512-BF16.
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0 || (edx & (1u << 22)) == 0 ||
        (edx & (1u << 24)) == 0)
      return std::string("this CPU has no AMX-BF16 (Intel Xeon Sapphire Rapids or later)");
    if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0 || (eax & (1u << 5)) == 0)
      return std::string("this CPU has no AVX512-BF16 (needed to round to bf16)");
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    if (syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) != 0)
      return "the kernel refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: " +
             std::string(std::strerror(errno)) + "; Linux >= 5.16 is needed)";
    return std::string();
  }();
  return reason;
#else
  static const std::string reason =
      "this program was compiled without AMX-BF16 and AVX512-BF16 (build with -march=sapphirerapids, or "
      "-march=native on such a CPU: CMake cpc::native, -DCPC_NATIVE=ON)";
  return reason;
#endif
}

inline std::atomic<matmul_precision>& matmul_precision_setting() {
  static std::atomic<matmul_precision> setting{matmul_precision::fp32};
  return setting;
}
}  // namespace detail

/// Why bf16 products cannot run here (the build's instructions, the CPU, or the kernel), or the
/// empty string when they can. The first call asks Linux for the AMX state (once per process).
inline const std::string& bf16_matmul_unavailable_reason() {
  return detail::request_amx_permission();
}

/// Checks that bf16 products can run here (see `bf16_matmul_unavailable_reason`).
/// Errors: `cpc::config_error` "bf16 matmul precision is unavailable: <why>".
inline void require_bf16_matmul() {
  const std::string& why = bf16_matmul_unavailable_reason();
  if (!why.empty()) throw config_error("bf16 matmul precision is unavailable: " + why);
}

/// Sets the precision of the convolutions' matrix products for the whole process (all threads,
/// every model); takes effect at the next convolution call. Default fp32.
/// Errors: `cpc::config_error` when bf16 is asked for and unavailable, with the reason (see
/// `bf16_matmul_unavailable_reason`); the setting is then unchanged.
inline void set_matmul_precision(matmul_precision p) {
  if (p == matmul_precision::bf16) require_bf16_matmul();
  detail::matmul_precision_setting().store(p, std::memory_order_relaxed);
}

/// The precision set by `set_matmul_precision` (fp32 unless set).
inline matmul_precision get_matmul_precision() noexcept {
  return detail::matmul_precision_setting().load(std::memory_order_relaxed);
}

/// Sets the matmul precision for a scope and restores the previous one on exit.
/// Errors: as `set_matmul_precision`.
class matmul_precision_scope {
 public:
  explicit matmul_precision_scope(matmul_precision p) : previous_(get_matmul_precision()) {
    set_matmul_precision(p);
  }
  ~matmul_precision_scope() {
    detail::matmul_precision_setting().store(previous_, std::memory_order_relaxed);
  }
  matmul_precision_scope(const matmul_precision_scope&) = delete;
  matmul_precision_scope& operator=(const matmul_precision_scope&) = delete;

 private:
  matmul_precision previous_;
};

}  // namespace cpc
