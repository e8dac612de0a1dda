// Tables of the on-device tokenizer. The definitions are generated from
// tokenizer.json by embbert.device.tokenizer_tables (`embbert build`) into the
// build's generated folder; see firmware/TOKENIZER.md for what each holds.
#pragma once
#include <stdint.h>

namespace embbert {
namespace tables {

extern const char kTokenizerSha256[];   // hex sha256 of the tokenizer.json bytes
extern const uint16_t kVocabSize;
extern const uint16_t kUnkId, kClsId, kSepId;
extern const uint16_t kInitialIds[128];       // id of ASCII char c starting a word; 0xFFFF: none
extern const uint16_t kContinuationIds[128];  // id of "##c"; 0xFFFF: none
extern const uint32_t kMergeCount;
extern const uint32_t kMergeKeys[];  // sorted (left id << 16) | right id
extern const uint16_t kMergeIds[];   // merged id; a lower id is an earlier (preferred) merge
extern const uint32_t kNormRunCount;
extern const uint32_t kNormRuns[];   // sorted (first code point << 8) | value; value 0: drop,
                                     // 0x20: space, else the ASCII character

}  // namespace tables
}  // namespace embbert
