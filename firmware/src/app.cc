// The portable core: reads frames, runs commands, writes replies.
// Commands and replies are specified in firmware/PROTOCOL.md.
#include "app.h"

#include <string.h>

#include "json_writer.h"
#include "model_runner.h"
#include "port.h"
#include "protocol.h"
#include "tokenizer.h"
#include "tokenizer_tables.h"

namespace embbert {
namespace {

using namespace proto;

constexpr uint16_t kMaxIds = 512;   // ids buffer; max_len above this is refused at boot
constexpr uint16_t kMaxLabels = 64;

Receiver g_rx;
uint8_t g_frame[kMaxFrame];      // the reply being built; its payload is written in place
uint8_t g_wire[kMaxEncoded + 2];  // the reply, COBS-encoded, between two zeros
uint16_t g_ids[kMaxIds];
int8_t g_logits[kMaxLabels];
uint16_t g_max_len;                // ids per inference, from the model runner

uint8_t* reply_payload() { return g_frame + kHeaderBytes; }

void send(uint8_t type, uint16_t seq, uint8_t status, size_t payload_len) {
  const size_t n = build_frame(type, seq, status, reply_payload(), payload_len, g_frame, g_wire);
  port_write(g_wire, n);
}

void send_error(uint8_t type, uint16_t seq, uint8_t status, const char* detail) {
  JsonWriter j(reinterpret_cast<char*>(reply_payload()), kMaxPayload);
  j.begin_object().str("error", status_name(status)).str("detail", detail).end_object();
  send(type, seq, status, j.size());
}

// Sends a JSON reply; one that outgrew the payload buffer is an error, not
// a cut-off document.
void send_json(uint8_t type, uint16_t seq, const JsonWriter& j) {
  if (!j.ok()) {
    send_error(type, seq, kErrBadArgument, "reply larger than max_payload_bytes");
    return;
  }
  send(type, seq, kOk, j.size());
}

uint64_t elapsed(uint64_t start) {
  return (port_counter() - start) * EMBBERT_COUNTER_NUM / EMBBERT_COUNTER_DEN;
}

void cmd_info(uint16_t seq) {
  const ModelInfo& m = model_info();
  uint32_t flash = 0, ram = 0;
  const bool known = port_memory(&flash, &ram);
  JsonWriter j(reinterpret_cast<char*>(reply_payload()), kMaxPayload);
  j.begin_object()
      .num("protocol", kVersion)
      .str("firmware", EMBBERT_FIRMWARE_VERSION)
      .str("board", EMBBERT_BOARD)
      .str("backend", m.backend)
      .str("model_sha256", m.model_sha256)
      .str("tokenizer_sha256", tables::kTokenizerSha256)
      .num("vocab_size", tables::kVocabSize)
      .num("max_len", g_max_len)
      .begin_array("labels");
  for (uint16_t i = 0; i < m.n_labels; ++i) j.item_str(m.labels[i]);
  j.end_array().unum("arena_bytes", m.arena_bytes).boolean("full_length", m.full_length);
  if (known) j.unum("flash_bytes", flash).unum("ram_bytes", ram);
  else j.str("flash_bytes", nullptr).str("ram_bytes", nullptr);
  j.num("max_payload_bytes", kMaxPayload)
      .num("max_text_bytes", EMBBERT_MAX_TEXT_BYTES)
      .str("counter", EMBBERT_COUNTER_UNIT)
      .end_object();
  send_json(kInfo | kReplyBit, seq, j);
}

// Tokenizes a request's text into g_ids; on failure sends the error reply.
bool tokenize_text(uint8_t type, uint16_t seq, const Frame& f, TokenizeResult* r) {
  *r = tokenize(f.payload, f.payload_len, g_ids, g_max_len);
  switch (r->status) {
    case TokenizeStatus::kOk: return true;
    case TokenizeStatus::kBadUtf8: send_error(type, seq, kErrBadUtf8, "text is not valid UTF-8"); return false;
    case TokenizeStatus::kTooLong: send_error(type, seq, kErrTextTooLong, "text longer than max_text_bytes"); return false;
    default: send_error(type, seq, kErrBadArgument, "max_len below 2"); return false;
  }
}

void cmd_tokenize(uint16_t seq, const Frame& f) {
  const uint8_t type = kTokenize | kReplyBit;
  const uint64_t start = port_counter();
  TokenizeResult r;
  if (!tokenize_text(type, seq, f, &r)) return;
  const uint64_t time = elapsed(start);
  JsonWriter j(reinterpret_cast<char*>(reply_payload()), kMaxPayload);
  j.begin_object().begin_array("ids");
  for (uint16_t i = 0; i < r.n_ids; ++i) j.item(g_ids[i]);
  j.end_array().num("n_tokens", r.n_ids).boolean("truncated", r.truncated).unum(EMBBERT_COUNTER_UNIT, time).end_object();
  send_json(type, seq, j);
}

// Runs the model on g_ids[0..n) and sends the logits (and, for CLASSIFY, the label).
void infer_and_reply(uint8_t type, uint16_t seq, uint16_t n, bool with_label, uint64_t tokenize_time) {
  const ModelInfo& m = model_info();
  const uint64_t start = port_counter();
  const RunStatus s = model_infer(g_ids, n, g_logits);
  const uint64_t time = elapsed(start);
  if (s == RunStatus::kNoModel) {
    send_error(type, seq, kErrNoModel, "no model in this build: build with `embbert build ART_DIR` on a converted model");
    return;
  }
  if (s == RunStatus::kBadInput) { send_error(type, seq, kErrBadArgument, "the model cannot take these ids"); return; }
  if (s != RunStatus::kOk) { send_error(type, seq, kErrModel, model_error()); return; }
  uint16_t best = 0;
  for (uint16_t i = 1; i < m.n_labels; ++i) if (g_logits[i] > g_logits[best]) best = i;
  JsonWriter j(reinterpret_cast<char*>(reply_payload()), kMaxPayload);
  j.begin_object();
  if (with_label) j.str("label", m.n_labels ? m.labels[best] : nullptr).num("label_index", best);
  j.begin_array("logits");
  for (uint16_t i = 0; i < m.n_labels; ++i) j.item(g_logits[i]);
  j.end_array().num("n_tokens", n).unum(EMBBERT_COUNTER_UNIT, time);
  if (with_label) j.unum("tokenize_" EMBBERT_COUNTER_UNIT, tokenize_time);
  j.end_object();
  send_json(type, seq, j);
}

void cmd_classify(uint16_t seq, const Frame& f) {
  const uint8_t type = kClassify | kReplyBit;
  const uint64_t start = port_counter();
  TokenizeResult r;
  if (!tokenize_text(type, seq, f, &r)) return;
  infer_and_reply(type, seq, r.n_ids, true, elapsed(start));
}

void cmd_infer_ids(uint16_t seq, const Frame& f) {
  const uint8_t type = kInferIds | kReplyBit;
  const size_t n = f.payload_len / 2;
  if (f.payload_len % 2 != 0 || n < 2 || n > g_max_len) {
    send_error(type, seq, kErrBadArgument, "ids: 2..max_len uint16 little-endian values");
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    g_ids[i] = static_cast<uint16_t>(f.payload[2 * i] | (f.payload[2 * i + 1] << 8));
    if (g_ids[i] >= tables::kVocabSize) { send_error(type, seq, kErrBadArgument, "id outside the vocabulary"); return; }
  }
  infer_and_reply(type, seq, static_cast<uint16_t>(n), false, 0);
}

void dispatch(const Frame& f) {
  if (f.version != kVersion) {
    send_error(kUnreadable, f.seq, kErrVersion, "this firmware speaks protocol version 1");
    return;
  }
  switch (f.type) {
    case kPing:
      memmove(reply_payload(), f.payload, f.payload_len);  // echo
      send(kPing | kReplyBit, f.seq, kOk, f.payload_len);
      return;
    case kInfo: cmd_info(f.seq); return;
    case kTokenize: cmd_tokenize(f.seq, f); return;
    case kClassify: cmd_classify(f.seq, f); return;
    case kInferIds: cmd_infer_ids(f.seq, f); return;
    case kReset:
      send(kReset | kReplyBit, f.seq, kOk, 0);
      port_reset();
      return;
    default: send_error(f.type < kReplyBit ? (f.type | kReplyBit) : kUnreadable, f.seq, kErrUnknownCommand,
                        "unknown command");
  }
}

const char* frame_error_detail(uint8_t status) {
  switch (status) {
    case kErrCobs: return "bytes before the zero are not valid COBS";
    case kErrCrc: return "CRC-32 mismatch";
    case kErrShort: return "frame shorter than header and CRC";
    case kErrOversized: return "frame longer than the receive buffer; dropped";
    default: return "unreadable frame";
  }
}

void print_ready() {
  static const char kLine[] = "EMBBERT READY protocol=1 firmware=" EMBBERT_FIRMWARE_VERSION " board=" EMBBERT_BOARD
                              " backend=";
  const uint8_t zero = 0;
  port_write(&zero, 1);  // the line stands between two frame delimiters
  port_write(reinterpret_cast<const uint8_t*>(kLine), sizeof kLine - 1);
  const char* backend = model_info().backend;
  port_write(reinterpret_cast<const uint8_t*>(backend), strlen(backend));
  port_write(reinterpret_cast<const uint8_t*>("\n"), 2);  // "\n" and its terminating zero
}

}  // namespace
}  // namespace embbert

void app_setup(void) {
  using namespace embbert;
  port_init();
  model_setup();
  g_max_len = model_info().max_len;
  if (g_max_len > kMaxIds) g_max_len = kMaxIds;
  print_ready();
}

void app_poll(void) {
  using namespace embbert;
  port_idle();
  for (int c = port_getc(); c >= 0; c = port_getc()) {
    switch (g_rx.push(static_cast<uint8_t>(c))) {
      case Receiver::kFrame: dispatch(g_rx.frame()); break;
      case Receiver::kError: send_error(kUnreadable, kNoSeq, g_rx.error(), frame_error_detail(g_rx.error())); break;
      default: break;
    }
  }
}
