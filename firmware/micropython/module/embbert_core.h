// The portable core (tokenizer.h, model_runner.h) behind a C interface, for
// MicroPython's C binding (modembbert.c). Buffers are static: nothing here
// touches the GC heap, and nothing here raises (the binding does).
#ifndef EMBBERT_CORE_H
#define EMBBERT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char* backend;
  const char* model_sha256;  // NULL without a model
  const char* tokenizer_sha256;
  const char* const* labels;
  uint16_t n_labels;
  uint16_t max_len;  // ids per inference, [CLS] and [SEP] included
  uint16_t vocab_size;
  uint32_t arena_bytes;  // the backend's static arena
  uint32_t max_text_bytes;
  bool full_length;
} embbert_core_info_t;

typedef enum {
  EMBBERT_CORE_OK = 0,
  EMBBERT_CORE_BAD_UTF8,   // tokenize: not UTF-8
  EMBBERT_CORE_TOO_LONG,   // tokenize: text over max_text_bytes
  EMBBERT_CORE_BAD_IDS,    // infer: the model cannot take these ids
  EMBBERT_CORE_NO_MODEL,   // infer: a build without a model
  EMBBERT_CORE_FAILED,     // infer: the backend failed; embbert_core_error()
} embbert_core_status_t;

const embbert_core_info_t* embbert_core_info(void);  // sets the model up on first use
// Tokenizes into the core's static ids (max_len entries), cut to max_len as on the host.
embbert_core_status_t embbert_core_tokenize(const char* text, size_t len, const uint16_t** ids, uint16_t* n_ids);
// ids: n in 2..max_len, each < vocab_size (the binding checks); logits: n_labels int8.
embbert_core_status_t embbert_core_infer(const uint16_t* ids, uint16_t n, int8_t* logits);
const char* embbert_core_error(void);

#ifdef __cplusplus
}
#endif

#endif  // EMBBERT_CORE_H
