// DEPTHWISE_CONV_2D along one axis, int8 per channel (ours).
//
// Weights come pre-packed by the code generator (convert/aot/codegen.py
// pack_depthwise_weights): per channel, the taps padded with zeros to a
// multiple of 4, each group of 4 stored [w0 w2 w1 w3], so that SXTB16 of the
// word is the pair (w0, w1) and SXTB16 ROR 8 is (w2, w3). One channel at a
// time, x's column is widened once to int16 (offset added) in scratch, so
// neighbouring taps are neighbouring halfwords: an aligned word is the pair
// (x[t], x[t + 1]) and an unaligned one (x[t + 1], x[t + 2]). Four outputs
// share each weight word: per 16 MACs 1 load and 2 extends of w, 6 loads of
// x, 8 SMLAD. Exact integer sums; TFLite-Micro's requantization.
#pragma once
#include <stdint.h>
#include <string.h>

#include "aot_ops.h"
#include "dsp.h"
#include "kernel_params.h"

namespace embbert_aot {
namespace kernels {

namespace depthwise {
constexpr int PaddedTaps(int taps) { return (taps + 3) / 4 * 4; }
constexpr int PaddedOut(int out_len) { return (out_len + 3) / 4 * 4; }
// int16 column: every x the blocks of 4 outputs read, + one word
constexpr int ColumnLength(int out_len, int taps) { return PaddedOut(out_len) + PaddedTaps(taps) + 4; }

inline uint32_t Word(const int16_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);  // one LDR, aligned or not (ARMv7-M allows unaligned LDR)
  return v;
}
}  // namespace depthwise

constexpr int DepthwiseConvScratchBytes(int out_len, int taps) { return 2 * depthwise::ColumnLength(out_len, taps); }

// out may be x itself (the arena plan writes over a dying input: codegen.py
// depthwise_in_place) when it has x's shape (a causal conv: pad_before = taps - 1):
// each channel's column of x is in scratch before that channel's outputs are written,
// and they overwrite only that column.
constexpr bool DepthwiseConvInPlace(int out_len, int in_len) { return out_len == in_len; }

// x [in_len, channels] after p.pad_before rows of its zero point, w packed [channels][PaddedTaps(taps)],
// bias [channels] or nullptr -> out [pad_before + in_len - taps + 1, channels]
inline void DepthwiseConv1D(const DepthwiseParams& p, const int8_t* x, int in_len, int channels, const int8_t* w,
                            int taps, const int32_t* bias, int8_t* out, void* scratch) {
  using depthwise::Word;
  const int pad = p.pad_before;
  const int out_len = pad + in_len - taps + 1;
  const int taps4 = depthwise::PaddedTaps(taps);
  const int column = depthwise::ColumnLength(out_len, taps);
  int16_t* xr = static_cast<int16_t*>(scratch);
  for (int i = 0; i < pad; ++i) xr[i] = 0;  // the zero point plus x_offset
  for (int i = pad + in_len; i < column; ++i) xr[i] = 0;  // meets only the zero-padded taps or unstored outputs
  for (int c = 0; c < channels; ++c) {
    const int8_t* xc = x + c;
    for (int i = pad; i < pad + in_len; ++i, xc += channels) xr[i] = static_cast<int16_t>(*xc + p.x_offset);
    const int8_t* wc = w + c * taps4;
    const int32_t b = bias ? bias[c] : 0;
    const QuantizedMultiplier q(p.multiplier[c], p.shift[c]);
    for (int t = 0; t < out_len; t += 4) {
      int32_t a0 = b, a1 = b, a2 = b, a3 = b;
      const int16_t* xs = xr + t;  // t + j even: the words at xs + j are aligned
      for (const int8_t* wj = wc; wj != wc + taps4; wj += 4, xs += 4) {
#if EMBBERT_AOT_DSP
        uint32_t v;
        memcpy(&v, wj, 4);
        const uint32_t w01 = __sxtb16(v), w23 = Sxtb16Ror8(v);
        const uint32_t p0 = Word(xs), p1 = Word(xs + 2), p2 = Word(xs + 4);
        const uint32_t q1 = Word(xs + 1), q2 = Word(xs + 3), q3 = Word(xs + 5);
        a0 = __smlad(p0, w01, a0);
        a0 = __smlad(p1, w23, a0);
        a1 = __smlad(q1, w01, a1);
        a1 = __smlad(q2, w23, a1);
        a2 = __smlad(p1, w01, a2);
        a2 = __smlad(p2, w23, a2);
        a3 = __smlad(q2, w01, a3);
        a3 = __smlad(q3, w23, a3);
#else
        const int32_t w0 = wj[0], w1 = wj[2], w2 = wj[1], w3 = wj[3];
        a0 += xs[0] * w0 + xs[1] * w1 + xs[2] * w2 + xs[3] * w3;
        a1 += xs[1] * w0 + xs[2] * w1 + xs[3] * w2 + xs[4] * w3;
        a2 += xs[2] * w0 + xs[3] * w1 + xs[4] * w2 + xs[5] * w3;
        a3 += xs[3] * w0 + xs[4] * w1 + xs[5] * w2 + xs[6] * w3;
#endif
      }
      int8_t* o = out + t * channels + c;
      if (t + 4 <= out_len) {
        o[0] = Saturate8(q.Apply(a0) + p.out_offset);
        o[channels] = Saturate8(q.Apply(a1) + p.out_offset);
        o[2 * channels] = Saturate8(q.Apply(a2) + p.out_offset);
        o[3 * channels] = Saturate8(q.Apply(a3) + p.out_offset);
      } else {
        const int32_t acc[4] = {a0, a1, a2, a3};
        for (int k = 0; t + k < out_len; ++k) o[k * channels] = Saturate8(q.Apply(acc[k]) + p.out_offset);
      }
    }
  }
}

}  // namespace kernels
}  // namespace embbert_aot
