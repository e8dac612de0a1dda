// ADD, int8 (ours): TFLite-Micro's AddFunc with each input's rescaling looked
// up. The rescaled input, MultiplyByQuantizedMultiplier of (x + offset) <<
// left_shift, depends on the input byte alone: two tables of 256 int32, filled
// with the reference's own arithmetic and kept for the next call with the same
// inputs' parameters (the attention loop, convert/aot/attention.py, adds one
// tile of rows per call); the sum's requantization is computed per element as
// the reference does (QuantizedMultiplier, aot_ops.h). Up to 512 elements the
// reference's AddFunc runs per element instead, unless the tables are already
// there or the call before had the same parameters (a loop over tiles).
#pragma once
#include <stdint.h>
#include <string.h>

#include "aot_ops.h"
#include "dsp.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"

namespace embbert_aot {
namespace kernels {

namespace add {
template <bool kSmall>
inline void Rows(const int32_t* t1, const int32_t* t2, const QuantizedMultiplier& q, int32_t out_offset, const int8_t* a,
                 const int8_t* b, int outer, int inner, int b_outer, int b_inner, int8_t* out) {
  for (int o = 0; o < outer; ++o, a += inner, out += inner, b += b_outer) {
    const int8_t* bk = b;
    for (int k = 0; k < inner; ++k, bk += b_inner) {
      const int32_t sum = t1[a[k]] + t2[*bk];
      out[k] = Saturate8((kSmall ? q.ApplySmall(sum) : q.Apply(sum)) + out_offset);
    }
  }
}

// The rescaled inputs by byte (index v + 128), and the largest |sum| two of them give.
struct Tables {
  int32_t key[7] = {0, 0, 0, 0, 0, 0, -1};  // the parameters they were filled for (left_shift -1: never)
  int32_t scaled1[256], scaled2[256];
  int64_t largest;
};

inline Tables& LastTables() {
  static Tables t;
  return t;
}

// The tables of p's inputs: those of the last call when its parameters were the same.
inline const Tables& TablesFor(const tflite_micro::ArithmeticParams& p, const int32_t (&key)[7]) {
  Tables& t = LastTables();
  if (memcmp(key, t.key, sizeof(key)) == 0) return t;
  for (int v = -128; v < 128; ++v) {
    t.scaled1[v + 128] = tflite_micro::MultiplyByQuantizedMultiplierSmallerThanOneExp(
        (p.input1_offset + v) * (1 << p.left_shift), p.input1_multiplier, p.input1_shift);
    t.scaled2[v + 128] = tflite_micro::MultiplyByQuantizedMultiplierSmallerThanOneExp(
        (p.input2_offset + v) * (1 << p.left_shift), p.input2_multiplier, p.input2_shift);
  }
  int32_t m1 = 0, m2 = 0;
  for (int v = 0; v < 256; ++v) {
    m1 = t.scaled1[v] > m1 ? t.scaled1[v] : (-t.scaled1[v] > m1 ? -t.scaled1[v] : m1);
    m2 = t.scaled2[v] > m2 ? t.scaled2[v] : (-t.scaled2[v] > m2 ? -t.scaled2[v] : m2);
  }
  t.largest = int64_t{m1} + m2;
  memcpy(t.key, key, sizeof(key));
  return t;
}
}  // namespace add

// out[o][k] = a[o][k] + b[o * b_outer + k * b_inner] (o < outer, k < inner; b_inner 0 or 1, a stride 0 broadcasts b)
inline void Add(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  const int32_t key[7] = {p.input1_offset, p.input1_multiplier, p.input1_shift, p.input2_offset,
                          p.input2_multiplier, p.input2_shift, p.left_shift};
  static int32_t last_key[7] = {0, 0, 0, 0, 0, 0, -1};  // the last call's, tables or not
  const bool again = memcmp(key, last_key, sizeof(key)) == 0;
  memcpy(last_key, key, sizeof(key));
  if (outer * inner <= 512 && !again && memcmp(key, add::LastTables().key, sizeof(key)) != 0) {
    for (int o = 0; o < outer; ++o)
      for (int k = 0; k < inner; ++k)
        out[o * inner + k] = tflite_micro::reference_integer_ops::AddFunc(a[o * inner + k], b[o * b_outer + k * b_inner], p);
    return;
  }
  const add::Tables& t = add::TablesFor(p, key);
  const int32_t* t1 = t.scaled1 + 128;
  const int32_t* t2 = t.scaled2 + 128;
  const QuantizedMultiplier q(p.output_multiplier, p.output_shift);
  if (t.largest <= q.SmallLimit())  // the largest |sum| any pair of inputs can give: SMMULR when small enough
    add::Rows<true>(t1, t2, q, p.output_offset, a, b, outer, inner, b_outer, b_inner, out);
  else
    add::Rows<false>(t1, t2, q, p.output_offset, a, b, outer, inner, b_outer, b_inner, out);
}

}  // namespace kernels
}  // namespace embbert_aot
