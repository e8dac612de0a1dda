// Backend "none": a firmware without a model. It serves INFO, PING, RESET and
// TOKENIZE; INFER_IDS and CLASSIFY answer the "no_model" status.
#include "model_runner.h"

#ifndef EMBBERT_MAX_LEN
#define EMBBERT_MAX_LEN 256
#endif

namespace embbert {
namespace {
const ModelInfo kInfo = {"none", nullptr, nullptr, 0, EMBBERT_MAX_LEN, 0, false};
}  // namespace

RunStatus model_setup() { return RunStatus::kNoModel; }
const ModelInfo& model_info() { return kInfo; }
RunStatus model_infer(const uint16_t*, uint16_t, int8_t*) { return RunStatus::kNoModel; }
const char* model_error() { return "no model in this build (backend none)"; }

}  // namespace embbert
