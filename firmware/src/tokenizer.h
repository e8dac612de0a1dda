// The on-device tokenizer: UTF-8 text -> [CLS] ids [SEP], exactly as HF
// tokenizers on the host (normalize, split, BPE, truncate). No heap; the
// scratch space is static and sized by EMBBERT_MAX_TEXT_BYTES.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifndef EMBBERT_MAX_TEXT_BYTES
#define EMBBERT_MAX_TEXT_BYTES 2048
#endif

namespace embbert {

enum class TokenizeStatus : uint8_t {
  kOk = 0,
  kBadUtf8,      // error_offset: first byte of the bad sequence
  kTooLong,      // text longer than EMBBERT_MAX_TEXT_BYTES
  kBadMaxLen,    // max_len < 2: no room for [CLS] and [SEP]
};

struct TokenizeResult {
  TokenizeStatus status;
  uint16_t n_ids;         // ids written, [CLS] and [SEP] included
  bool truncated;         // the text had more tokens than max_len - 2
  uint32_t error_offset;  // byte offset of a kBadUtf8 error
};

// ids must hold max_len entries. The text is cut to max_len ids in all,
// still ending with [SEP] (embbert.tokenizer.encode).
TokenizeResult tokenize(const uint8_t* text, size_t len, uint16_t* ids, uint16_t max_len);

// One code point's normalized form: 0 (dropped), ' ', or an ASCII char.
uint8_t normalize_code_point(uint32_t cp);

}  // namespace embbert
