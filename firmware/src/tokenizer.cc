// The on-device tokenizer. What it reproduces, step by step, is written down
// in firmware/TOKENIZER.md; the tables come from tokenizer_tables.h.
#include "tokenizer.h"

#include <string.h>

#include "tokenizer_tables.h"

namespace embbert {
namespace {

constexpr uint16_t kNone = 0xFFFF;

// One word's pieces and, beside each, the merged id of it with its right
// neighbour (kNone: no merge). A word has at most as many characters as the
// text has bytes.
uint16_t g_symbols[EMBBERT_MAX_TEXT_BYTES];
uint16_t g_pair_ids[EMBBERT_MAX_TEXT_BYTES];

uint16_t merged_id(uint16_t left, uint16_t right) {
  const uint32_t key = (static_cast<uint32_t>(left) << 16) | right;
  uint32_t lo = 0, hi = tables::kMergeCount;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (tables::kMergeKeys[mid] < key) lo = mid + 1; else hi = mid;
  }
  return (lo < tables::kMergeCount && tables::kMergeKeys[lo] == key) ? tables::kMergeIds[lo] : kNone;
}

// BPE: merge the earliest-ranked pair (lowest merged id), leftmost first, as
// HF does, until no pair merges. Returns the number of pieces left.
size_t apply_merges(size_t n) {
  for (size_t i = 0; i + 1 < n; ++i) g_pair_ids[i] = merged_id(g_symbols[i], g_symbols[i + 1]);
  while (n > 1) {
    size_t best = n;
    uint16_t best_id = kNone;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (g_pair_ids[i] < best_id) { best_id = g_pair_ids[i]; best = i; }
    }
    if (best == n) break;
    g_symbols[best] = best_id;
    // Drop piece best+1 and the pair that started at it.
    const size_t tail = n - best - 2;  // pieces after best+1
    memmove(&g_symbols[best + 1], &g_symbols[best + 2], tail * sizeof(uint16_t));
    if (tail > 1) memmove(&g_pair_ids[best + 1], &g_pair_ids[best + 2], (tail - 1) * sizeof(uint16_t));
    --n;
    if (best > 0) g_pair_ids[best - 1] = merged_id(g_symbols[best - 1], g_symbols[best]);
    if (best + 1 < n) g_pair_ids[best] = merged_id(g_symbols[best], g_symbols[best + 1]);
  }
  return n;
}

bool is_ascii_punctuation(uint8_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

// Decodes one UTF-8 sequence at text[*pos]; strict (no overlongs, no
// surrogates, nothing above U+10FFFF). Returns false on a bad sequence.
bool next_code_point(const uint8_t* text, size_t len, size_t* pos, uint32_t* cp) {
  const uint8_t b0 = text[*pos];
  if (b0 < 0x80) { *cp = b0; *pos += 1; return true; }
  size_t extra;
  uint32_t value, minimum;
  if ((b0 & 0xE0) == 0xC0) { extra = 1; value = b0 & 0x1F; minimum = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { extra = 2; value = b0 & 0x0F; minimum = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { extra = 3; value = b0 & 0x07; minimum = 0x10000; }
  else return false;
  if (*pos + extra >= len) return false;  // sequence cut short by the end
  for (size_t k = 1; k <= extra; ++k) {
    const uint8_t b = text[*pos + k];
    if ((b & 0xC0) != 0x80) return false;
    value = (value << 6) | (b & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value < 0xE000)) return false;
  *cp = value;
  *pos += 1 + extra;
  return true;
}

// Collects the ids of one text; stops adding once `budget` ids are in.
struct Emitter {
  uint16_t* ids;
  uint16_t n;
  uint16_t budget;  // ids allowed between [CLS] and [SEP]
  size_t word_len;
  bool truncated;

  bool full() const { return n >= budget; }

  void add_char(uint8_t c) {
    const uint16_t id = word_len == 0 ? tables::kInitialIds[c] : tables::kContinuationIds[c];
    g_symbols[word_len++] = id == kNone ? tables::kUnkId : id;
  }

  void end_word() {
    if (word_len == 0) return;
    const size_t pieces = apply_merges(word_len);
    word_len = 0;
    for (size_t i = 0; i < pieces; ++i) {
      if (full()) { truncated = true; return; }
      ids[1 + n++] = g_symbols[i];
    }
  }
};

}  // namespace

uint8_t normalize_code_point(uint32_t cp) {
  if (cp < 0x80) {
    if (cp < 0x20 || cp == 0x7F) return ' ';
    return (cp >= 'A' && cp <= 'Z') ? static_cast<uint8_t>(cp + ('a' - 'A')) : static_cast<uint8_t>(cp);
  }
  // Last run starting at or before cp.
  const uint32_t key = (cp << 8) | 0xFF;
  uint32_t lo = 0, hi = tables::kNormRunCount;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (tables::kNormRuns[mid] <= key) lo = mid + 1; else hi = mid;
  }
  return lo == 0 ? ' ' : static_cast<uint8_t>(tables::kNormRuns[lo - 1] & 0xFF);
}

TokenizeResult tokenize(const uint8_t* text, size_t len, uint16_t* ids, uint16_t max_len) {
  TokenizeResult result = {TokenizeStatus::kOk, 0, false, 0};
  if (max_len < 2) { result.status = TokenizeStatus::kBadMaxLen; return result; }
  if (len > EMBBERT_MAX_TEXT_BYTES) { result.status = TokenizeStatus::kTooLong; return result; }
  // The whole text must be valid, as the host could not take it otherwise.
  uint32_t cp;
  for (size_t pos = 0; pos < len;) {
    const size_t start = pos;
    if (!next_code_point(text, len, &pos, &cp)) {
      result.status = TokenizeStatus::kBadUtf8;
      result.error_offset = static_cast<uint32_t>(start);
      return result;
    }
  }
  Emitter out = {ids, 0, static_cast<uint16_t>(max_len - 2), 0, false};
  ids[0] = tables::kClsId;
  for (size_t pos = 0; pos < len;) {
    next_code_point(text, len, &pos, &cp);
    const uint8_t c = normalize_code_point(cp);
    if (c == 0) continue;  // a combining mark: gone, the word goes on
    if (out.full()) {      // budget spent: only look for one more token
      if (c != ' ') { out.truncated = true; break; }
      continue;
    }
    if (c == ' ') { out.end_word(); continue; }
    if (is_ascii_punctuation(c)) {
      out.end_word();
      out.add_char(c);
      out.end_word();
      continue;
    }
    out.add_char(c);
  }
  out.end_word();
  ids[1 + out.n] = tables::kSepId;
  result.n_ids = static_cast<uint16_t>(out.n + 2);
  result.truncated = out.truncated;
  return result;
}

}  // namespace embbert
