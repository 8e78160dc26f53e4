/* Synthesises sentences with libespeak-ng and writes each one's audio and phone timings.
 *
 * Usage: espeak_phones VOICE OUT_DIR < LIST
 *   VOICE   an espeak-ng voice name with optional variant, e.g. "en-us+m1", "en-gb-x-rp+f4".
 *   LIST    one utterance per line: "<utt_id><TAB><text>".
 * For each line it writes OUT_DIR/<utt_id>.raw (signed 16-bit little-endian mono samples at the
 * rate printed on stdout's first line, "rate <Hz>") and OUT_DIR/<utt_id>.pho, one line per phone
 * event: "<start_sample> <espeak phoneme mnemonic>", followed by "<total_samples> END".
 * The espeak-ng command line reports phone timings only for MBROLA voices; the library's
 * phoneme events (espeakINITIALIZE_PHONEME_EVENTS) carry the sample position for every voice.
 */
#include <espeak-ng/speak_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE* g_raw;
static FILE* g_pho;
static long g_samples;

static int on_synth(short* wav, int n, espeak_EVENT* events) {
  for (espeak_EVENT* e = events; e->type != espeakEVENT_LIST_TERMINATED; ++e)
    if (e->type == espeakEVENT_PHONEME && e->id.string[0] != '\0')
      fprintf(g_pho, "%d %.8s\n", e->sample, e->id.string);
  if (wav != NULL && n > 0) {
    fwrite(wav, sizeof(short), (size_t)n, g_raw);
    g_samples += n;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s VOICE OUT_DIR < LIST\n", argv[0]);
    return 2;
  }
  const int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_PHONEME_EVENTS);
  if (rate <= 0) {
    fprintf(stderr, "espeak_phones: espeak_Initialize failed\n");
    return 1;
  }
  if (espeak_SetVoiceByName(argv[1]) != EE_OK) {
    fprintf(stderr, "espeak_phones: unknown voice '%s'\n", argv[1]);
    return 1;
  }
  espeak_SetSynthCallback(on_synth);
  printf("rate %d\n", rate);
  char line[4096], path[4096];
  while (fgets(line, sizeof line, stdin) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    char* tab = strchr(line, '\t');
    if (tab == NULL) continue;
    *tab = '\0';
    const char* text = tab + 1;
    g_raw = g_pho = NULL;
    if (snprintf(path, sizeof path, "%s/%s.raw", argv[2], line) < (int)sizeof path) g_raw = fopen(path, "wb");
    if (snprintf(path, sizeof path, "%s/%s.pho", argv[2], line) < (int)sizeof path) g_pho = fopen(path, "w");
    if (g_raw == NULL || g_pho == NULL) {
      fprintf(stderr, "espeak_phones: cannot write %s\n", path);
      return 1;
    }
    g_samples = 0;
    if (espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL) != EE_OK) {
      fprintf(stderr, "espeak_phones: synthesis failed for %s\n", line);
      return 1;
    }
    espeak_Synchronize();
    fprintf(g_pho, "%ld END\n", g_samples);
    fclose(g_raw);
    fclose(g_pho);
  }
  espeak_Terminate();
  return 0;
}
