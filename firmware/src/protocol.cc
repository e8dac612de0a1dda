#include "protocol.h"

#include <string.h>

namespace embbert {
namespace proto {
namespace {

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, as zlib), four bits
// at a time: a 16-entry table is 64 bytes of flash instead of 1 kB.
constexpr uint32_t nibble_entry(uint32_t n) {
  uint32_t c = n;
  for (int k = 0; k < 4; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  return c;
}
constexpr uint32_t kCrcNibble[16] = {
    nibble_entry(0),  nibble_entry(1),  nibble_entry(2),  nibble_entry(3),
    nibble_entry(4),  nibble_entry(5),  nibble_entry(6),  nibble_entry(7),
    nibble_entry(8),  nibble_entry(9),  nibble_entry(10), nibble_entry(11),
    nibble_entry(12), nibble_entry(13), nibble_entry(14), nibble_entry(15)};

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    crc = (crc >> 4) ^ kCrcNibble[crc & 0xF];
    crc = (crc >> 4) ^ kCrcNibble[crc & 0xF];
  }
  return ~crc;
}

size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out) {
  size_t code_at = 0, o = 1;
  uint8_t code = 1;  // 1 + bytes since the last code byte
  for (size_t i = 0; i < len; ++i) {
    if (in[i] != 0) {
      out[o++] = in[i];
      ++code;
    }
    if (in[i] == 0 || code == 0xFF) {
      out[code_at] = code;
      code = 1;
      code_at = o++;
      // A full block that ends the data needs no extra code byte.
      if (in[i] != 0 && i + 1 == len) return o - 1;
    }
  }
  out[code_at] = code;
  return o;
}

bool cobs_decode(uint8_t* buf, size_t len, size_t* out_len) {
  size_t i = 0, o = 0;
  while (i < len) {
    const uint8_t code = buf[i++];
    if (code == 0 || i + code - 1 > len) return false;
    for (uint8_t k = 1; k < code; ++k) {
      if (buf[i] == 0) return false;
      buf[o++] = buf[i++];
    }
    if (code != 0xFF && i < len) buf[o++] = 0;
  }
  *out_len = o;
  return true;
}

const char* status_name(uint8_t status) {
  switch (status) {
    case kOk: return "ok";
    case kErrCobs: return "bad_cobs";
    case kErrCrc: return "bad_crc";
    case kErrShort: return "short_frame";
    case kErrOversized: return "oversized_frame";
    case kErrVersion: return "bad_version";
    case kErrUnknownCommand: return "unknown_command";
    case kErrBadArgument: return "bad_argument";
    case kErrBadUtf8: return "bad_utf8";
    case kErrTextTooLong: return "text_too_long";
    case kErrNoModel: return "no_model";
    case kErrModel: return "model_failed";
    default: return "unknown_status";
  }
}

Receiver::Event Receiver::push(uint8_t byte) {
  if (byte == 0) return finish();
  if (len_ == sizeof buf_) {
    overflow_ = true;  // keep swallowing until the zero that ends it
    return kNothing;
  }
  buf_[len_++] = byte;
  return kNothing;
}

Receiver::Event Receiver::finish() {
  const size_t len = len_;
  const bool overflow = overflow_;
  len_ = 0;
  overflow_ = false;
  if (overflow) { error_ = kErrOversized; return kError; }
  if (len == 0) return kNothing;  // two zeros in a row: the host's resync, not a frame
  size_t n;
  if (!cobs_decode(buf_, len, &n)) { error_ = kErrCobs; return kError; }
  if (n < kHeaderBytes + kCrcBytes) { error_ = kErrShort; return kError; }
  const uint32_t sent = buf_[n - 4] | (buf_[n - 3] << 8) | (buf_[n - 2] << 16) | (static_cast<uint32_t>(buf_[n - 1]) << 24);
  if (crc32(buf_, n - kCrcBytes) != sent) { error_ = kErrCrc; return kError; }
  frame_.version = buf_[0];
  frame_.type = buf_[1];
  frame_.seq = static_cast<uint16_t>(buf_[2] | (buf_[3] << 8));
  frame_.status = buf_[4];
  frame_.payload = buf_ + kHeaderBytes;
  frame_.payload_len = n - kHeaderBytes - kCrcBytes;
  return kFrame;
}

size_t build_frame(uint8_t type, uint16_t seq, uint8_t status, const uint8_t* payload, size_t payload_len,
                   uint8_t* frame, uint8_t* wire) {
  if (payload_len > kMaxPayload) payload_len = kMaxPayload;  // callers size replies below this
  frame[0] = kVersion;
  frame[1] = type;
  frame[2] = static_cast<uint8_t>(seq);
  frame[3] = static_cast<uint8_t>(seq >> 8);
  frame[4] = status;
  if (payload_len != 0 && payload != frame + kHeaderBytes) memmove(frame + kHeaderBytes, payload, payload_len);
  const size_t n = kHeaderBytes + payload_len;
  const uint32_t crc = crc32(frame, n);
  for (int k = 0; k < 4; ++k) frame[n + k] = static_cast<uint8_t>(crc >> (8 * k));
  wire[0] = 0;
  const size_t encoded = cobs_encode(frame, n + kCrcBytes, wire + 1);
  wire[1 + encoded] = 0;
  return encoded + 2;
}

}  // namespace proto
}  // namespace embbert
