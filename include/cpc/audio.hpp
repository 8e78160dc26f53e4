#pragma once
/// Umbrella header for the parts of cpc that need the audio libraries (link `cpc::audio`:
/// libsndfile, libsamplerate, fftw3): audio files, speech corpora, window sampling.
/// Kept apart from cpc/cpc.hpp so code that never touches audio needs none of them.
#include "cpc/data/audio_file.hpp"
#include "cpc/data/corpus.hpp"
#include "cpc/data/normalization.hpp"
#include "cpc/data/window_sampler.hpp"
#include "cpc/eval/features.hpp"
#include "cpc/eval/speech_probes.hpp"
#include "cpc/train/speech.hpp"
