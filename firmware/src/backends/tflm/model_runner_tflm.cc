// Backend "tflm": TFLite-Micro's MicroInterpreter over the artifact's int8
// model (model_data.cc, in flash), with a MicroMutableOpResolver holding
// exactly the manifest's ops (tflm_ops.h) and a static arena of the
// manifest's arena_bytes (tflm_model_info.h). All three are generated into the
// build's generated folder by `embbert build --backend tflm`.
//
// TFLite-Micro itself comes from the board's lib_deps (platformio.ini). Its
// namespace is `tflite` there; EMBBERT_TFLM_NS names another one (the
// compile check against the xmos-ai-tools headers uses tflite_micro).
//
// The interpreter runs the graph's fixed length L: ids are padded with the
// model's pad id (the model ignores right padding, model_runner.h).
//
// Failures are reported, never hidden: model_setup() checks the schema
// version, that every op the model's operators run is in the resolver, AllocateTensors()
// and the input/output tensors, and keeps the first problem for
// model_error(); model_infer() then answers kFailed with it.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <new>
#include <type_traits>

#include "model_data.h"       // generated: g_model_data, g_model_data_len
#include "model_runner.h"
#include "tensorflow/lite/core/api/error_reporter.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"
#include "tflm_model_info.h"  // generated: sha256, labels, L, pad id, arena size
#include "tflm_ops.h"         // generated: RegisterOps, kNumOps

#ifndef EMBBERT_TFLM_NS
#define EMBBERT_TFLM_NS tflite
#endif

namespace tfl = EMBBERT_TFLM_NS;

namespace embbert {
namespace {

using Resolver = tfl::MicroMutableOpResolver<tflm_model::kNumOps>;

// full_length: the interpreter always runs the graph's L (ids padded with the pad id)
const ModelInfo kInfo = {"tflm", tflm_model::kModelSha256, tflm_model::kLabels, tflm_model::kNumLabels,
                         tflm_model::kMaxLen, tflm_model::kArenaBytes, true};

alignas(16) uint8_t g_arena[tflm_model::kArenaBytes];
alignas(Resolver) uint8_t g_resolver_mem[sizeof(Resolver)];
alignas(tfl::MicroInterpreter) uint8_t g_interpreter_mem[sizeof(tfl::MicroInterpreter)];
tfl::MicroInterpreter* g_interpreter = nullptr;
TfLiteTensor* g_input = nullptr;
TfLiteTensor* g_output = nullptr;
bool g_ready = false;
char g_error[192] = "model_setup() has not run";

// Older TFLite-Micro releases (TensorFlowLite_ESP32) report through an
// ErrorReporter; its text, if the library keeps error strings, becomes the detail.
class DetailReporter : public tfl::ErrorReporter {
 public:
  int Report(const char* format, va_list args) override {
    return vsnprintf(g_error, sizeof(g_error), format, args);
  }
};

// The constructor without an ErrorReporter (current TFLite-Micro) where it
// exists, else the one that takes it (older releases): chosen at compile time.
// Everything lives in static storage, built in place: no heap, and no static
// constructors or destructors (bare-metal ports run none).
template <typename Interpreter>
Interpreter* make_interpreter(const tfl::Model* model, const Resolver& resolver) {
  if constexpr (std::is_constructible<Interpreter, const tfl::Model*, const Resolver&, uint8_t*, size_t>::value) {
    return new (g_interpreter_mem) Interpreter(model, resolver, g_arena, sizeof(g_arena));
  } else {
    alignas(DetailReporter) static uint8_t reporter_mem[sizeof(DetailReporter)];
    return new (g_interpreter_mem)
        Interpreter(model, resolver, g_arena, sizeof(g_arena), new (reporter_mem) DetailReporter());
  }
}

// The failure detail, written without printf (newlib-nano's pulls in malloc).
class Detail {
 public:
  Detail() { g_error[0] = '\0'; }
  Detail& operator<<(const char* text) {
    while (text != nullptr && *text != '\0' && n_ + 1 < sizeof(g_error)) g_error[n_++] = *text++;
    g_error[n_] = '\0';
    return *this;
  }
  Detail& operator<<(unsigned long value) {
    char digits[20];
    int k = 0;
    do { digits[k++] = static_cast<char>('0' + value % 10); value /= 10; } while (value != 0);
    char text[21];
    for (int i = 0; i < k; ++i) text[i] = digits[k - 1 - i];
    text[k] = '\0';
    return *this << static_cast<const char*>(text);
  }

 private:
  size_t n_ = 0;
};

RunStatus failed() {
  g_ready = false;
  return RunStatus::kFailed;
}

size_t elements(const TfLiteTensor* t) {
  size_t n = 1;
  for (int i = 0; i < t->dims->size; ++i) n *= static_cast<size_t>(t->dims->data[i]);
  return n;
}

}  // namespace

RunStatus model_setup() {
  if (g_ready) return RunStatus::kOk;
  const tfl::Model* model = tfl::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    Detail() << "model.tflite has schema version " << static_cast<unsigned long>(model->version())
             << ", this TFLite-Micro reads " << static_cast<unsigned long>(TFLITE_SCHEMA_VERSION);
    return failed();
  }
  Resolver* resolver = new (g_resolver_mem) Resolver();
  const char* missing = tflm_model::RegisterOps(*resolver);
  if (missing != nullptr) {
    Detail() << "op " << missing
             << ": this TFLite-Micro library has no kernel for it (its MicroMutableOpResolver lacks the Add method)";
    return failed();
  }
  // Every op an operator runs must be in the resolver: name the first one that is not. Only the
  // codes operators use count: TFLite-Micro ignores the others, and so does this check.
  const auto* codes = model->operator_codes();
  const auto* subgraphs = model->subgraphs();
  for (unsigned s = 0; subgraphs != nullptr && s < subgraphs->size(); ++s) {
    const auto* ops = subgraphs->Get(s)->operators();
    for (unsigned k = 0; ops != nullptr && k < ops->size(); ++k) {
      const unsigned i = ops->Get(k)->opcode_index();
      if (codes == nullptr || i >= codes->size()) {
        Detail() << "operator " << static_cast<unsigned long>(k) << " names operator code "
                 << static_cast<unsigned long>(i) << ", which the model does not have";
        return failed();
      }
      const auto* code = codes->Get(i);
      const tfl::BuiltinOperator op = tfl::GetBuiltinCode(code);
      if (op == tfl::BuiltinOperator_CUSTOM) {
        const char* name = code->custom_code() ? code->custom_code()->c_str() : "?";
        Detail() << "custom op " << name << " is not supported (the converter refuses custom ops)";
        return failed();
      }
      if (resolver->FindOp(op) == nullptr) {
        Detail() << "op " << tfl::EnumNameBuiltinOperator(op)
                 << " is in the model but not in the op resolver (manifest ops and model.tflite disagree: "
                    "rebuild from one `embbert convert`)";
        return failed();
      }
    }
  }
  g_interpreter = make_interpreter<tfl::MicroInterpreter>(model, *resolver);
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    Detail() << "AllocateTensors failed: the arena of " << static_cast<unsigned long>(sizeof(g_arena))
             << " B (manifest arena_bytes " << static_cast<unsigned long>(tflm_model::kManifestArenaBytes)
             << " + headroom, aligned to 16) is too small for this TFLite-Micro, or a kernel's Prepare "
                "refused the model";
    return failed();
  }
  if (g_interpreter->inputs_size() != 1 || g_interpreter->outputs_size() != 1) {
    Detail() << "the model has " << static_cast<unsigned long>(g_interpreter->inputs_size()) << " inputs and "
             << static_cast<unsigned long>(g_interpreter->outputs_size()) << " outputs; expected 1 and 1";
    return failed();
  }
  g_input = g_interpreter->input(0);
  g_output = g_interpreter->output(0);
  if (g_input == nullptr || g_input->type != kTfLiteInt32 || elements(g_input) != tflm_model::kMaxLen) {
    Detail() << "input tensor: expected " << static_cast<unsigned long>(tflm_model::kMaxLen)
             << " int32 ids, got TfLiteType " << (g_input ? static_cast<unsigned long>(g_input->type) : 0UL)
             << " with " << (g_input ? static_cast<unsigned long>(elements(g_input)) : 0UL) << " elements";
    return failed();
  }
  if (g_output == nullptr || g_output->type != kTfLiteInt8 || elements(g_output) != tflm_model::kNumLabels) {
    Detail() << "output tensor: expected " << static_cast<unsigned long>(tflm_model::kNumLabels)
             << " int8 logits, got TfLiteType " << (g_output ? static_cast<unsigned long>(g_output->type) : 0UL)
             << " with " << (g_output ? static_cast<unsigned long>(elements(g_output)) : 0UL) << " elements";
    return failed();
  }
  g_error[0] = '\0';
  g_ready = true;
  return RunStatus::kOk;
}

const ModelInfo& model_info() { return kInfo; }

RunStatus model_infer(const uint16_t* ids, uint16_t n, int8_t* logits) {
  if (!g_ready) return RunStatus::kFailed;  // model_setup() failed; model_error() says why
  if (n < 1 || n > tflm_model::kMaxLen) return RunStatus::kBadInput;
  int32_t* in = g_input->data.i32;
  for (uint16_t i = 0; i < n; ++i) in[i] = ids[i];
  for (uint16_t i = n; i < tflm_model::kMaxLen; ++i) in[i] = tflm_model::kPadId;  // the full fixed length
  if (g_interpreter->Invoke() != kTfLiteOk) {
    Detail() << "Invoke failed (" << static_cast<unsigned long>(n) << " ids)";
    return RunStatus::kFailed;
  }
  memcpy(logits, g_output->data.int8, tflm_model::kNumLabels);
  return RunStatus::kOk;
}

const char* model_error() { return g_error; }

}  // namespace embbert
