// Host driver for the device tokenizer: the same tokenizer.cc, built with g++
// so parity with HF can be checked on every test sentence in seconds.
// stdin: records of (uint32 little-endian byte count, UTF-8 bytes).
// stdout: one line per record: the ids, space-separated, then " T" if the
// text was truncated; or "E <status> <offset>".
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer.h"

static uint8_t g_text[EMBBERT_MAX_TEXT_BYTES];

int main(int argc, char** argv) {
  const int max_len = argc > 1 ? atoi(argv[1]) : 256;
  static uint16_t ids[65536];
  if (max_len < 0 || max_len > 65535) return 2;
  uint8_t header[4];
  while (fread(header, 1, 4, stdin) == 4) {
    const size_t len = header[0] | (header[1] << 8) | (header[2] << 16) | ((size_t)header[3] << 24);
    if (len > sizeof g_text || fread(g_text, 1, len, stdin) != len) return 3;
    const embbert::TokenizeResult r = embbert::tokenize(g_text, len, ids, (uint16_t)max_len);
    if (r.status != embbert::TokenizeStatus::kOk) {
      printf("E %d %u\n", (int)r.status, (unsigned)r.error_offset);
      continue;
    }
    for (int i = 0; i < r.n_ids; ++i) printf(i ? " %u" : "%u", ids[i]);
    printf(r.truncated ? " T\n" : "\n");
  }
  return 0;
}
