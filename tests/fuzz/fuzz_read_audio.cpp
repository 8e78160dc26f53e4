// libFuzzer target: read_audio on arbitrary bytes (any format libsndfile recognises: WAV, FLAC,
// AIFF, AU, OGG, MP3, raw-headed formats, ...). The first byte picks the options (strict mode,
// target rate); the rest is the file. Any exception other than cpc::error, any sanitizer report,
// leak or out-of-memory is a finding.
#include <cstddef>
#include <cstdint>

#include <cpc/core/threads.hpp>
#include <cpc/data/audio_file.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const auto path = cpc::fuzz::scratch_dir() / "input.audio";
  cpc::fuzz::write_file(path, data + 1, size - 1);
  constexpr int rates[] = {16000, 8000, 22050, 44100};
  const cpc::audio_read_options opts{.sample_rate = rates[(data[0] >> 1) & 3],
                                     .strict = (data[0] & 1) != 0,
                                     .quality = cpc::resample_quality::fastest};
  try {
    const auto x = cpc::read_audio(path, opts);
    // The documented post-conditions: non-empty, finite, in [-1, 1].
    if (x.empty()) __builtin_trap();
    for (float v : x)
      if (!(v >= -1.0f && v <= 1.0f)) __builtin_trap();
  } catch (const cpc::error&) {
  }
  try {
    (void)cpc::probe_audio(path);
  } catch (const cpc::error&) {
  }
  return 0;
}
