#include "json_writer.h"

namespace embbert {

void JsonWriter::put(char c) {
  if (len_ < cap_) buf_[len_++] = c; else overflow_ = true;
}

void JsonWriter::put_str(const char* s) {
  while (*s) put(*s++);
}

void JsonWriter::put_quoted(const char* s) {
  static const char kHex[] = "0123456789abcdef";
  put('"');
  for (; *s; ++s) {
    const uint8_t c = static_cast<uint8_t>(*s);
    if (c == '"' || c == '\\') { put('\\'); put(static_cast<char>(c)); }
    else if (c < 0x20) { put_str("\\u00"); put(kHex[c >> 4]); put(kHex[c & 0xF]); }
    else put(static_cast<char>(c));
  }
  put('"');
}

void JsonWriter::put_uint(uint64_t v) {  // nano printf has no %llu
  char digits[20];
  int n = 0;
  do { digits[n++] = static_cast<char>('0' + v % 10); v /= 10; } while (v);
  while (n) put(digits[--n]);
}

void JsonWriter::comma() {
  if (need_comma_) put(',');
  need_comma_ = true;
}

JsonWriter& JsonWriter::open(char c) {
  put(c);
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::close(char c) {
  put(c);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(const char* k) {
  comma();
  put_quoted(k);
  put(':');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::str(const char* k, const char* value) {
  key(k);
  if (value) put_quoted(value); else put_str("null");
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::num(const char* k, int64_t value) {
  key(k);
  need_comma_ = false;
  return item(value);
}

JsonWriter& JsonWriter::unum(const char* k, uint64_t value) {
  key(k);
  put_uint(value);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::boolean(const char* k, bool value) {
  key(k);
  put_str(value ? "true" : "false");
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::item(int64_t value) {
  comma();
  if (value < 0) { put('-'); put_uint(static_cast<uint64_t>(-(value + 1)) + 1); }
  else put_uint(static_cast<uint64_t>(value));
  return *this;
}

JsonWriter& JsonWriter::item_str(const char* value) {
  comma();
  put_quoted(value);
  return *this;
}

}  // namespace embbert
