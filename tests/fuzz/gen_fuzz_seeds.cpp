// Writes the binary seed inputs of the fuzz targets into <dir>/<target>/ (usage:
// gen_fuzz_seeds tests/fuzz/corpus). Deterministic but for the timestamp libsndfile puts in the
// PEAK chunk of float files; the committed seeds are its output, plus regression inputs (files
// named regression-*) that fuzzing found.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <cpc/data/audio_file.hpp>
#include <cpc/train/checkpoint.hpp>

#include "fuzz_util.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::vector<float> wave(std::size_t n, int channels) {
  std::vector<float> x(n * static_cast<std::size_t>(channels));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(0.5 * std::sin(0.05 * static_cast<double>(i)));
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: gen_fuzz_seeds <corpus dir>\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path tmp = cpc::fuzz::scratch_dir();
  for (const char* t : {"fuzz_read_audio", "fuzz_safetensors", "fuzz_checkpoint", "fuzz_corpus"})
    fs::create_directories(out / t);

  // read_audio: byte 0 = options (0: 16 kHz, not strict), then the file.
  struct audio_seed {
    const char* name;
    std::size_t frames;
    int rate, channels;
    cpc::audio_format format;
  } audio[] = {{"mono16k.wav", 64, 16000, 1, cpc::audio_format::wav_pcm16},
               {"stereo44k.wav", 48, 44100, 2, cpc::audio_format::wav_pcm16},
               {"float8k.wav", 40, 8000, 1, cpc::audio_format::wav_float},
               {"mono16k.flac", 200, 16000, 1, cpc::audio_format::flac_pcm16}};
  for (const auto& a : audio) {
    cpc::write_audio(tmp / a.name, wave(a.frames, a.channels), a.rate, a.channels, a.format);
    put(out / "fuzz_read_audio" / a.name, std::string(1, '\0') + slurp(tmp / a.name));
  }
  put(out / "fuzz_read_audio" / "strict-mono16k.wav", std::string(1, '\1') + slurp(tmp / "mono16k.wav"));
  // Other containers and encodings libsndfile reads, written with libsndfile directly (libsndfile
  // is not instrumented, so the fuzzer only reaches the formats it has a seed for).
  struct sf_seed {
    const char* name;
    int format, rate, channels;
  } more[] = {{"pcm16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 16000, 1},
              {"pcm16.au", SF_FORMAT_AU | SF_FORMAT_PCM_16, 8000, 1},
              {"ulaw.wav", SF_FORMAT_WAV | SF_FORMAT_ULAW, 16000, 1},
              {"ima-adpcm.wav", SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM, 16000, 1},
              {"pcm24.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_24, 22050, 2},
              {"float.caf", SF_FORMAT_CAF | SF_FORMAT_FLOAT, 16000, 1},
              {"pcm16.rf64", SF_FORMAT_RF64 | SF_FORMAT_PCM_16, 48000, 1},
              {"pcm24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 16000, 2},
              {"vorbis.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1}};
  for (const auto& a : more) {
    SF_INFO info{};
    info.samplerate = a.rate;
    info.channels = a.channels;
    info.format = a.format;
    SNDFILE* f = sf_open((tmp / a.name).c_str(), SFM_WRITE, &info);
    if (!f) {
      std::cerr << "gen_fuzz_seeds: cannot write " << a.name << ": " << sf_strerror(nullptr) << '\n';
      continue;
    }
    const auto x = wave(64, a.channels);
    sf_writef_float(f, x.data(), 64);
    sf_close(f);
    put(out / "fuzz_read_audio" / a.name, std::string(1, '\0') + slurp(tmp / a.name));
  }

  // safetensors: every dtype, a 0-d and an empty tensor, metadata.
  {
    const float f[6] = {1, 2, 3, 4, 5, 6};
    const double d[2] = {0.5, -1};
    const std::int64_t i64[1] = {-3};
    const std::uint64_t u64[2] = {1, 2};
    const std::int32_t i32[3] = {7, 8, 9};
    const std::uint8_t u8[4] = {1, 2, 3, 4};
    cpc::safetensors_writer w;
    w.add("a", {2, 3}, f)
        .add("b", {2}, d)
        .add("c", {}, i64)
        .add("d", {2}, u64)
        .add("e", {3}, i32)
        .add("f", {2, 2}, u8);
    w.add("empty", {0, 3}, f).set_metadata("format", "test");
    w.save(out / "fuzz_safetensors" / "all-dtypes.safetensors");
    cpc::safetensors_writer one;
    one.add("x", {1}, f);
    one.save(out / "fuzz_safetensors" / "one.safetensors");
    cpc::safetensors_writer none;
    none.save(out / "fuzz_safetensors" / "no-tensors.safetensors");
  }

  // checkpoint of the micro model (Adam state, a "data" generator).
  {
    cpc::fuzz::micro_model m;
    cpc::adam<float> opt(m.parameters(), {});
    cpc::rng data(7);
    cpc::save_checkpoint(out / "fuzz_checkpoint" / "micro.ckpt", m, opt, {{"data", &data}},
                         {{"model", "micro"}});
  }

  // corpus: flags byte, then phones \0 alignments \0 train \0 test.
  const std::string nul(1, '\0');
  put(out / "fuzz_corpus" / "full.txt", std::string(1, '\0') + "sil\naa\nb\nk\nz\n" + nul +
                                            "u1 0 1 2\nu2 0 0 1 1 4\nu3 3\nu4 0 1 2 3 4 4 3 2 1 0\n" + nul +
                                            "u1\nu2\nu4\n" + nul + "u3\n");
  put(out / "fuzz_corpus" / "no-phones.txt", std::string(1, '\x08') + nul +
                                                 "u1 0 1 2 -1\nu2\t0 0 1 1\nu4 0 1 2 3 4 4 3 2 1\n" + nul +
                                                 nul + "u1 extra\n");
  put(out / "fuzz_corpus" / "strict-ids.txt",
      std::string(1, '\x13') + "a\nb\n" + nul + "u1 0 1 1\nzz 1\n\r\n");
  std::cout << "wrote seeds under " << out << '\n';
  return 0;
}
