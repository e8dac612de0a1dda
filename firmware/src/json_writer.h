// A tiny JSON writer into a fixed buffer: replies are JSON so a terminal and
// a regex can read them. Overflow is sticky and reported by ok().
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace embbert {

class JsonWriter {
 public:
  JsonWriter(char* buf, size_t cap) : buf_(buf), cap_(cap) {}
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array(const char* key) { this->key(key); return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(const char* k);
  JsonWriter& str(const char* key, const char* value);  // value nullptr: null
  JsonWriter& num(const char* key, int64_t value);
  JsonWriter& unum(const char* key, uint64_t value);
  JsonWriter& boolean(const char* key, bool value);
  JsonWriter& item(int64_t value);       // inside an array
  JsonWriter& item_str(const char* value);
  size_t size() const { return len_; }
  bool ok() const { return !overflow_; }

 private:
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  void comma();
  void put(char c);
  void put_str(const char* s);
  void put_quoted(const char* s);
  void put_uint(uint64_t v);
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool overflow_ = false;
  bool need_comma_ = false;
};

}  // namespace embbert
