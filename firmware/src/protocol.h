// The framed serial protocol (firmware/PROTOCOL.md): COBS frames ended by a
// zero byte; inside, version, type, sequence number, status, payload and a
// CRC-32 of all of it. Portable, no heap: fixed buffers sized at build time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifndef EMBBERT_MAX_PAYLOAD_BYTES
#define EMBBERT_MAX_PAYLOAD_BYTES 2048
#endif

namespace embbert {
namespace proto {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 5;  // version, type, seq (2), status
constexpr size_t kCrcBytes = 4;
constexpr size_t kMaxPayload = EMBBERT_MAX_PAYLOAD_BYTES;
constexpr size_t kMaxFrame = kHeaderBytes + kMaxPayload + kCrcBytes;  // decoded
// COBS adds one byte per 254 and one at the start.
constexpr size_t kMaxEncoded = kMaxFrame + kMaxFrame / 254 + 1;

// Frame types: requests are commands; a reply is the command | kReplyBit.
enum Command : uint8_t {
  kPing = 0x01,
  kInfo = 0x02,
  kTokenize = 0x03,
  kClassify = 0x04,
  kInferIds = 0x05,
  kReset = 0x06,
};
constexpr uint8_t kReplyBit = 0x80;
constexpr uint8_t kUnreadable = 0xFF;  // type of the reply to a frame that could not be read
constexpr uint16_t kNoSeq = 0xFFFF;    // its sequence number

enum Status : uint8_t {
  kOk = 0x00,
  kErrCobs = 0x01,          // the bytes between two zeros are not valid COBS
  kErrCrc = 0x02,           // CRC-32 mismatch
  kErrShort = 0x03,         // fewer bytes than header + CRC: a truncated frame
  kErrOversized = 0x04,     // longer than the receive buffer; discarded up to the next zero
  kErrVersion = 0x05,       // protocol version not served by this firmware
  kErrUnknownCommand = 0x06,
  kErrBadArgument = 0x07,   // payload malformed for the command
  kErrBadUtf8 = 0x08,       // text is not valid UTF-8
  kErrTextTooLong = 0x09,   // text longer than the tokenizer's buffer
  kErrNoModel = 0x0A,       // this build has no model (backend "none")
  kErrModel = 0x0B,         // the backend failed
};
const char* status_name(uint8_t status);

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

// COBS-encodes `len` bytes into out (capacity >= len + len / 254 + 1);
// returns the encoded length. The trailing zero is not written.
size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out);
// Decodes in place; returns false if the bytes are not valid COBS.
bool cobs_decode(uint8_t* buf, size_t len, size_t* out_len);

struct Frame {
  uint8_t version;
  uint8_t type;
  uint16_t seq;
  uint8_t status;
  const uint8_t* payload;
  size_t payload_len;
};

// Collects bytes up to a zero, then decodes and checks the frame.
class Receiver {
 public:
  enum Event : uint8_t { kNothing, kFrame, kError };
  // One byte in. On kFrame, frame() is valid until the next push; on
  // kError, error() says what was wrong with the bytes just ended.
  Event push(uint8_t byte);
  const Frame& frame() const { return frame_; }
  uint8_t error() const { return error_; }

 private:
  Event finish();
  uint8_t buf_[kMaxEncoded];
  size_t len_ = 0;
  bool overflow_ = false;
  Frame frame_ = {};
  uint8_t error_ = kOk;
};

// Builds one frame (header + payload + CRC) in `frame`, COBS-encodes it into
// `wire` with a zero before and after; returns the wire length.
size_t build_frame(uint8_t type, uint16_t seq, uint8_t status, const uint8_t* payload, size_t payload_len,
                   uint8_t* frame, uint8_t* wire);

}  // namespace proto
}  // namespace embbert
