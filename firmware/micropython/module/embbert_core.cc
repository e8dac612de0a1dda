// C interface over the portable core for the MicroPython binding: the same
// tokenizer and model runner as the bare firmware (firmware/src), unchanged.
#include "embbert_core.h"

#include "model_runner.h"
#include "tokenizer.h"
#include "tokenizer_tables.h"

namespace {

constexpr uint16_t kMaxIds = 512;  // the bare firmware's limit too (app.cc)
uint16_t g_ids[kMaxIds];
embbert_core_info_t g_info;
bool g_ready = false;

}  // namespace

extern "C" const embbert_core_info_t* embbert_core_info(void) {
  if (!g_ready) {
    embbert::model_setup();
    const embbert::ModelInfo& m = embbert::model_info();
    g_info.backend = m.backend;
    g_info.model_sha256 = m.model_sha256;
    g_info.tokenizer_sha256 = embbert::tables::kTokenizerSha256;
    g_info.labels = m.labels;
    g_info.n_labels = m.n_labels;
    g_info.max_len = m.max_len < kMaxIds ? m.max_len : kMaxIds;
    g_info.vocab_size = embbert::tables::kVocabSize;
    g_info.arena_bytes = m.arena_bytes;
    g_info.max_text_bytes = EMBBERT_MAX_TEXT_BYTES;
    g_info.full_length = m.full_length;
    g_ready = true;
  }
  return &g_info;
}

extern "C" embbert_core_status_t embbert_core_tokenize(const char* text, size_t len, const uint16_t** ids,
                                                       uint16_t* n_ids) {
  const embbert_core_info_t* info = embbert_core_info();
  const embbert::TokenizeResult r =
      embbert::tokenize(reinterpret_cast<const uint8_t*>(text), len, g_ids, info->max_len);
  *ids = g_ids;
  *n_ids = r.n_ids;
  switch (r.status) {
    case embbert::TokenizeStatus::kOk: return EMBBERT_CORE_OK;
    case embbert::TokenizeStatus::kBadUtf8: return EMBBERT_CORE_BAD_UTF8;
    case embbert::TokenizeStatus::kTooLong: return EMBBERT_CORE_TOO_LONG;
    default: return EMBBERT_CORE_FAILED;  // kBadMaxLen: a model whose max_len is below 2
  }
}

extern "C" embbert_core_status_t embbert_core_infer(const uint16_t* ids, uint16_t n, int8_t* logits) {
  embbert_core_info();
  switch (embbert::model_infer(ids, n, logits)) {
    case embbert::RunStatus::kOk: return EMBBERT_CORE_OK;
    case embbert::RunStatus::kNoModel: return EMBBERT_CORE_NO_MODEL;
    case embbert::RunStatus::kBadInput: return EMBBERT_CORE_BAD_IDS;
    default: return EMBBERT_CORE_FAILED;
  }
}

extern "C" const char* embbert_core_error(void) { return embbert::model_error(); }
