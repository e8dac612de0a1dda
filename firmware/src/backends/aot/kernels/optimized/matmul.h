// The int8 matrix product under FULLY_CONNECTED and BATCH_MATMUL (ours).
//
// out[r][u] = requantize(sum_k (x[r][k] + x_offset) * (w[u][k] + w_offset) + bias[u])
//
// Four rows of x at a time are widened once to int16, offset added, into
// scratch, in the order SMLAD pairs them with a word of w: [x0 x2 x1 x3] per
// 4 k. Then each w row is read once per 4 rows: one word of 4 int8 gives two
// int16 pairs (SXTAB16 and SXTAB16 ROR 8, w_offset added in the same
// instruction), each used by 4 SMLADs. Per 16 MACs: 1 load and 2 extends of
// w, 4 double-word loads of x, 8 SMLAD. Integer sums are exact in any order,
// so the result is the reference kernel's bit for bit; the requantization is
// TFLite-Micro's, bit for bit (QuantizedMultiplier, aot_ops.h).
//
// MatMulRhsDepthUnits: the same product with w given as [depth, units] (BATCH_MATMUL
// without adj_y: attention's P . V, V being x itself). The roles swap: four
// columns of w are packed into scratch in the layout PackRows gives rows
// (PackColumns), and the rows of x play the units, contiguous along k: the
// same hot loop, the packing paid once per 4 columns for all rows.
//
// One row (the last layer's [CLS] calls) has its own loops, a matrix-vector
// product: the row packed once and shared by 3 units per pass (DotRow3), and
// for w as [depth, units] pairs made from w's rows where they lie
// (DotColumns4) rather than its columns packed for a single row.
//
// With the DSP extension (Cortex-M4/M7: __ARM_FEATURE_DSP) through ACLE
// intrinsics; elsewhere the same loops in plain C.
#pragma once
#include <stdint.h>
#include <string.h>

#include "aot_ops.h"  // QuantizedMultiplier
#include "dsp.h"
#include "kernel_params.h"

namespace embbert_aot {
namespace kernels {
namespace matmul {

constexpr int kRows = 4;  // rows of x per block

// int16 scratch for one block: kRows rows of depth rounded up to 4
constexpr int ScratchBytes(int depth) { return kRows * ((depth + 3) / 4) * 4 * 2; }

inline uint32_t Word(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);  // one LDR (unaligned access is allowed on ARMv7-M)
  return v;
}

// Rows x[0..R) -> s: per 4 k, per row, the int16 [x0 x2 x1 x3] + offset.
template <int R>
inline void PackRows(const int8_t* x, int depth, int32_t offset, int16_t* s) {
  const int quads = depth / 4;
#if EMBBERT_AOT_DSP
  const uint32_t off2 = (static_cast<uint32_t>(offset) & 0xFFFF) | (static_cast<uint32_t>(offset) << 16);
  uint32_t* out = reinterpret_cast<uint32_t*>(s);
  for (int q = 0; q < quads; ++q) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint32_t v = Word(x + r * depth + 4 * q);
      *out++ = __sxtab16(off2, v);
      *out++ = Sxtab16Ror8(off2, v);
    }
  }
#else
  for (int q = 0; q < quads; ++q) {
    for (int r = 0; r < R; ++r) {
      const int8_t* v = x + r * depth + 4 * q;
      *s++ = static_cast<int16_t>(v[0] + offset);
      *s++ = static_cast<int16_t>(v[2] + offset);
      *s++ = static_cast<int16_t>(v[1] + offset);
      *s++ = static_cast<int16_t>(v[3] + offset);
    }
  }
#endif
}

#if EMBBERT_AOT_DSP
// One quad (4 k) of the R packed rows xs against the w word v: 2 extends, R
// double-word loads, 2R SMLAD.
template <int R>
inline void Quad(const uint32_t* xs, uint32_t v, uint32_t off2, int32_t* a) {
  const uint32_t even = __sxtab16(off2, v), odd = Sxtab16Ror8(off2, v);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    uint32_t x02, x13;  // the row's [x0 x2] and [x1 x3]: one LDRD (GCC would emit two LDR)
    __asm("ldrd %0, %1, [%2, %3]" : "=r"(x02), "=r"(x13) : "r"(xs), "I"(8 * r), "m"(*(const uint32_t(*)[2 * R])xs));
    a[r] = __smlad(x02, even, a[r]);
    a[r] = __smlad(x13, odd, a[r]);
  }
}

// The hot loop for 4 rows, two quads (32 MACs) per iteration in 32 instructions:
// per quad 1 LDR of w, 2 SXTAB16, 4 LDRD of x, 8 SMLAD; then CMP and BNE.
// Written out because GCC spills an accumulator here. xs and w advance.
#define EMBBERT_AOT_QUAD4                          \
  "ldr %[v], [%[w]], #4\n"                         \
  "sxtab16 %[o], %[off], %[v], ror #8\n"           \
  "sxtab16 %[v], %[off], %[v]\n"                   \
  "ldrd %[x0], %[x1], [%[xs]], #8\n"               \
  "smlad %[a0], %[x0], %[v], %[a0]\n"              \
  "smlad %[a0], %[x1], %[o], %[a0]\n"              \
  "ldrd %[x0], %[x1], [%[xs]], #8\n"               \
  "smlad %[a1], %[x0], %[v], %[a1]\n"              \
  "smlad %[a1], %[x1], %[o], %[a1]\n"              \
  "ldrd %[x0], %[x1], [%[xs]], #8\n"               \
  "smlad %[a2], %[x0], %[v], %[a2]\n"              \
  "smlad %[a2], %[x1], %[o], %[a2]\n"              \
  "ldrd %[x0], %[x1], [%[xs]], #8\n"               \
  "smlad %[a3], %[x0], %[v], %[a3]\n"              \
  "smlad %[a3], %[x1], %[o], %[a3]\n"
inline void DotPairsOfQuads4(const uint32_t*& xs, const int8_t*& w, const int8_t* end, uint32_t off2, int32_t* a) {
  uint32_t v, o, x0, x1;
  __asm volatile("1:\n" EMBBERT_AOT_QUAD4 EMBBERT_AOT_QUAD4
                 "cmp %[w], %[end]\n"
                 "bne 1b\n"
                 : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]), [w] "+r"(w), [xs] "+r"(xs),
                   [v] "=&r"(v), [o] "=&r"(o), [x0] "=&r"(x0), [x1] "=&r"(x1)
                 : [off] "r"(off2), [end] "r"(end)
                 : "cc", "memory");
}

// Many units against the same 4 packed rows: per unit, the accumulators start
// at its bias, run DotPairsOfQuads4's loop over the whole depth (a multiple of
// 8), and are stored to acc (4 per unit) for the requantization pass. All in
// one asm block: between units GCC would spill what the loop holds in
// registers. What the unit loop needs besides the hot loop's registers lives
// in `state`.
struct UnitLoopState {
  const int32_t* bias;  // the next unit's bias (advanced by bias_step bytes)
  int32_t bias_step;    // 4, or 0 to read one zero for every unit
  int32_t* acc;         // the next unit's 4 accumulators
  int32_t units;        // left to do, >= 1
};

inline void DotUnits4(const uint32_t* xs, const int8_t* w, int depth, uint32_t off2, UnitLoopState* state) {
  int32_t a0, a1, a2, a3;
  uint32_t v, o, x0, x1;
  const int8_t* wend;
  __asm volatile(
      "2:\n"
      "ldr %[v], [%[st], #0]\n"
      "ldr %[o], [%[st], #4]\n"
      "ldr %[a0], [%[v]]\n"
      "add %[v], %[v], %[o]\n"
      "str %[v], [%[st], #0]\n"
      "mov %[a1], %[a0]\n"
      "mov %[a2], %[a0]\n"
      "mov %[a3], %[a0]\n"
      "add %[wend], %[w], %[depth]\n"
      "1:\n" EMBBERT_AOT_QUAD4 EMBBERT_AOT_QUAD4
      "cmp %[w], %[wend]\n"
      "bne 1b\n"
      "sub %[xs], %[xs], %[depth], lsl #3\n"
      "ldr %[v], [%[st], #8]\n"
      "strd %[a0], %[a1], [%[v]], #8\n"
      "strd %[a2], %[a3], [%[v]], #8\n"
      "str %[v], [%[st], #8]\n"
      "ldr %[v], [%[st], #12]\n"
      "subs %[v], %[v], #1\n"
      "str %[v], [%[st], #12]\n"
      "bne 2b\n"
      : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w] "+r"(w), [xs] "+r"(xs),
        [v] "=&r"(v), [o] "=&r"(o), [x0] "=&r"(x0), [x1] "=&r"(x1), [wend] "=&r"(wend)
      : [off] "r"(off2), [depth] "r"(depth), [st] "r"(state)
      : "cc", "memory");
}
#undef EMBBERT_AOT_QUAD4
#endif

// acc[r] += sum over the whole quads of the packed rows s and the w row.
template <int R>
inline void DotQuads(const int16_t* s, const int8_t* w, int quads, int32_t w_offset, int32_t* acc) {
#if EMBBERT_AOT_DSP
  const uint32_t off2 = (static_cast<uint32_t>(w_offset) & 0xFFFF) | (static_cast<uint32_t>(w_offset) << 16);
  const uint32_t* xs = reinterpret_cast<const uint32_t*>(s);
  int32_t a[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) a[r] = acc[r];
  const int8_t* end = w + 4 * (quads & ~1);
  if (R == 4 && w != end) {
    DotPairsOfQuads4(xs, w, end, off2, a);
  } else {
    while (w != end) {  // two quads per iteration: the loop's own cost over 8R MACs
      const uint32_t v0 = Word(w), v1 = Word(w + 4);
      w += 8;
      Quad<R>(xs, v0, off2, a);
      Quad<R>(xs + 2 * R, v1, off2, a);
      xs += 4 * R;
    }
  }
  if (quads & 1) Quad<R>(xs, Word(w), off2, a);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r] = a[r];
#else
  for (int q = 0; q < quads; ++q) {
    const int32_t w0 = w[0] + w_offset, w1 = w[1] + w_offset, w2 = w[2] + w_offset, w3 = w[3] + w_offset;
    w += 4;
    for (int r = 0; r < R; ++r) {
      acc[r] += s[0] * w0 + s[1] * w2 + s[2] * w1 + s[3] * w3;
      s += 4;
    }
  }
#endif
}

#if EMBBERT_AOT_DSP
// Block<4> for a depth that is a multiple of 8 (the model's 16 and 128, and n when it is one):
// dot products of a chunk of units in one asm block (DotUnits4), then their
// requantization, with SMMULR for a unit whose accumulators are all within
// QuantizedMultiplier::SmallLimit (|acc| <= largest).
__attribute__((always_inline)) inline void Requantize4(const QuantizedMultiplier& q, bool small, int32_t out_offset,
                                                       const int32_t* a, int8_t* o, int stride) {
  if (small) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) o[r * stride] = Saturate8(q.ApplySmall(a[r]) + out_offset);
  } else {
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) o[r * stride] = Saturate8(q.Apply(a[r]) + out_offset);
  }
}

inline void Block4Even(const MatMulParams& p, const int8_t* x, const int8_t* w, int units, int depth,
                       const int32_t* bias, int8_t* out, int out_stride, int16_t* scratch, int64_t largest) {
  constexpr int kChunk = 32;
  PackRows<4>(x, depth, p.x_offset, scratch);
  const uint32_t off2 = (static_cast<uint32_t>(p.w_offset) & 0xFFFF) | (static_cast<uint32_t>(p.w_offset) << 16);
  const QuantizedMultiplier per_tensor(p.multiplier[0], p.shift[0]);
  const bool per_tensor_small = largest <= per_tensor.SmallLimit();
  const int32_t largest32 = largest < (1 << 30) ? static_cast<int32_t>(largest) : 1 << 30;  // SmallLimit() < 2^30
  const int32_t zero = 0;
  int32_t acc[kChunk * 4];
  for (int u0 = 0; u0 < units; u0 += kChunk) {
    const int chunk = units - u0 < kChunk ? units - u0 : kChunk;
    UnitLoopState state = {bias ? bias + u0 : &zero, bias ? 4 : 0, acc, chunk};
    DotUnits4(reinterpret_cast<const uint32_t*>(scratch), w + u0 * depth, depth, off2, &state);
    if (p.per_channel) {
      for (int u = 0; u < chunk; ++u) {
        const QuantizedMultiplier q(p.multiplier[u0 + u], p.shift[u0 + u]);
        Requantize4(q, largest32 <= q.SmallLimit(), p.out_offset, acc + 4 * u, out + u0 + u, out_stride);
      }
    } else if (per_tensor_small) {
      for (int u = 0; u < chunk; ++u) Requantize4(per_tensor, true, p.out_offset, acc + 4 * u, out + u0 + u, out_stride);
    } else {
      for (int u = 0; u < chunk; ++u) Requantize4(per_tensor, false, p.out_offset, acc + 4 * u, out + u0 + u, out_stride);
    }
  }
}
#endif

#if EMBBERT_AOT_DSP
// Written after a packed row, where the one-row loops stop: [-32768 -32768],
// which no packed word (two int16 within +-255) is; a Thumb-2 immediate.
constexpr uint32_t kSentinel = 0x80008000;
// w_offset's share of each unit's dot product with the packed row (its first
// `words` words), for the loops that leave it out: w_offset * sum(x + x_offset),
// modulo 2^32 as the accumulators' sums.
inline uint32_t WOffsetShare(const uint32_t* packed, int words, int32_t w_offset) {
  uint32_t sum = 0;
  if (w_offset != 0) {
#pragma GCC unroll 4
    for (int k = 0; k < words; ++k) sum = __smlad(packed[k], 0x00010001, sum);
  }
  return static_cast<uint32_t>(w_offset) * sum;
}

// One row of x against 3 units: the matrix-vector product of the last layer's
// [CLS] row. The row, packed once (PackRows<1>, x_offset added), is shared by
// 3 units per pass: per 8 k, 1 LDM of 4 words of x, then per unit 1 LDRD of
// w, 4 SXTB16 and 4 SMLAD; 32 k per iteration, then CMP and BNE = 114
// instructions per 96 MACs (a depth that is an odd multiple of 16 enters the
// loop halfway).
// The loop ends on a sentinel after the packed row, kSentinel: its first word
// of x loaded for the next pass (no register is left for an end pointer),
// which a packed word, two int16 within +-255, never is. w_offset is not added
// here: the caller adds w_offset * sum(x + x_offset) to each unit (sums are
// exact in any order). a[0..3) += the 3 dot products; depth is a multiple of
// 16, at least 16; the units' rows are w, w + depth, w + 2 depth. Not inlined:
// GCC finds no registers for the asm inside its caller.
#define EMBBERT_AOT_UNIT8(a, p)                 \
  "ldrd %[v0], %[v1], [%[" p "]], #8\n"        \
  "sxtb16 %[t], %[v0]\n"                       \
  "smlad %[" a "], %[x0], %[t], %[" a "]\n"    \
  "sxtb16 %[v0], %[v0], ror #8\n"              \
  "smlad %[" a "], %[x1], %[v0], %[" a "]\n"   \
  "sxtb16 %[t], %[v1]\n"                       \
  "smlad %[" a "], %[x2], %[t], %[" a "]\n"    \
  "sxtb16 %[v1], %[v1], ror #8\n"              \
  "smlad %[" a "], %[x3], %[v1], %[" a "]\n"
#define EMBBERT_AOT_LOAD_X "ldm %[xs]!, {%[x0], %[x1], %[x2], %[x3]}\n"
#define EMBBERT_AOT_UNITS3 EMBBERT_AOT_UNIT8("a0", "p0") EMBBERT_AOT_UNIT8("a1", "p1") EMBBERT_AOT_UNIT8("a2", "p2")
__attribute__((noinline)) inline void DotRow3(const uint32_t* xs, const int8_t* w, int depth, int32_t* a) {
  const int8_t *p0 = w, *p1 = w + depth, *p2 = w + 2 * depth;
  uint32_t t = depth & 16, v0, v1;  // then a temporary
  register uint32_t x0 asm("r0"), x1 asm("r1"), x2 asm("r2"), x3 asm("r3");  // LDM: ascending registers
  __asm volatile(EMBBERT_AOT_LOAD_X
                 "cmp %[t], #0\n"
                 "bne 2f\n"
                 "1:\n" EMBBERT_AOT_UNITS3 EMBBERT_AOT_LOAD_X EMBBERT_AOT_UNITS3 EMBBERT_AOT_LOAD_X
                 "2:\n" EMBBERT_AOT_UNITS3 EMBBERT_AOT_LOAD_X EMBBERT_AOT_UNITS3 EMBBERT_AOT_LOAD_X
                 "cmp %[x0], %[end]\n"
                 "bne 1b\n"
                 : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2),
                   [xs] "+r"(xs), [t] "+r"(t), [v0] "=&r"(v0), [v1] "=&r"(v1), [x0] "=&r"(x0), [x1] "=&r"(x1),
                   [x2] "=&r"(x2), [x3] "=&r"(x3)
                 : [end] "i"(kSentinel)
                 : "cc", "memory");
}
#undef EMBBERT_AOT_UNITS3
#undef EMBBERT_AOT_LOAD_X
#undef EMBBERT_AOT_UNIT8

// Block<1> for a depth that is a multiple of 16 and at least 3 units: DotRow3
// over groups of 3 units (the last group overlapping the one before when units
// is not a multiple of 3), then Block's requantization.
inline void Row(const MatMulParams& p, const int8_t* x, const int8_t* w, int units, int depth, const int32_t* bias,
                int8_t* out, int16_t* scratch) {
  PackRows<1>(x, depth, p.x_offset, scratch);
  uint32_t* packed = reinterpret_cast<uint32_t*>(scratch);
  packed[depth / 2] = kSentinel;  // 4 words within ScratchBytes(depth) >= 8 depth
  const uint32_t w_share = WOffsetShare(packed, depth / 2, p.w_offset);
  QuantizedMultiplier q(p.multiplier[0], p.shift[0]);  // TFLite-Micro's requantization (aot_ops.h)
  for (int u = 0; u < units; u += 3) {
    const int u0 = u + 3 <= units ? u : units - 3;
    int32_t acc[3];
    for (int j = 0; j < 3; ++j) acc[j] = static_cast<int32_t>(w_share + static_cast<uint32_t>(bias ? bias[u0 + j] : 0));
    DotRow3(reinterpret_cast<const uint32_t*>(scratch), w + u0 * depth, depth, acc);
    for (int j = 0; j < 3; ++j) {
      if (p.per_channel) q = QuantizedMultiplier(p.multiplier[u0 + j], p.shift[u0 + j]);
      out[u0 + j] = Saturate8(q.Apply(acc[j]) + p.out_offset);
    }
  }
}
#endif

// R rows of x (stride depth) against all units of w; out rows at stride out_stride.
template <int R>
inline void Block(const MatMulParams& p, const int8_t* x, const int8_t* w, int units, int depth, const int32_t* bias,
                  int8_t* out, int out_stride, int16_t* scratch, int64_t largest) {
#if EMBBERT_AOT_DSP
  if (R == 4 && depth >= 8 && depth % 8 == 0 && units > 0) {  // DotUnits4 runs its loop at least once
    Block4Even(p, x, w, units, depth, bias, out, out_stride, scratch, largest);
    return;
  }
  if (R == 1 && depth >= 16 && depth % 16 == 0 && units >= 3) {
    Row(p, x, w, units, depth, bias, out, scratch);
    return;
  }
#else
  (void)largest;
#endif
  PackRows<R>(x, depth, p.x_offset, scratch);
  const int quads = depth / 4;
  QuantizedMultiplier q(p.multiplier[0], p.shift[0]);  // TFLite-Micro's requantization (aot_ops.h)
  for (int u = 0; u < units; ++u, w += depth, ++out) {
    int32_t acc[R];
    const int32_t b = bias ? bias[u] : 0;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = b;
    DotQuads<R>(scratch, w, quads, p.w_offset, acc);
    for (int k = 4 * quads; k < depth; ++k) {
      const int32_t wk = w[k] + p.w_offset;
      for (int r = 0; r < R; ++r) acc[r] += (x[r * depth + k] + p.x_offset) * wk;
    }
    if (p.per_channel) q = QuantizedMultiplier(p.multiplier[u], p.shift[u]);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) out[r * out_stride] = Saturate8(q.Apply(acc[r]) + p.out_offset);
  }
}

// x [rows, depth] . w [units, depth]^T -> out [rows, units]. x is read only by PackRows, a
// block of rows before that block's outputs are written (and by Block's tail when depth
// is not a multiple of 4): with units == depth, out may be x (FullyConnectedInPlace).
inline void MatMul(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units, int depth,
                   const int32_t* bias, int8_t* out, void* scratch) {
  int16_t* s = static_cast<int16_t*>(scratch);
  // |x + x_offset| and |w + w_offset| are at most 256 (offsets are minus int8 zero points)
  int64_t largest = int64_t{depth} * 256 * 256;
  int32_t largest_bias = 0;
  for (int u = 0; bias && u < units; ++u) largest_bias = bias[u] > largest_bias ? bias[u] : (-bias[u] > largest_bias ? -bias[u] : largest_bias);
  largest += largest_bias;  // the largest |accumulator|
  int r = 0;
  for (; r + kRows <= rows; r += kRows)
    Block<kRows>(p, x + r * depth, w, units, depth, bias, out + r * units, units, s, largest);
  switch (rows - r) {
    case 3: Block<3>(p, x + r * depth, w, units, depth, bias, out + r * units, units, s, largest); break;
    case 2: Block<2>(p, x + r * depth, w, units, depth, bias, out + r * units, units, s, largest); break;
    case 1: Block<1>(p, x + r * depth, w, units, depth, bias, out + r * units, units, s, largest); break;
    default: break;
  }
}

// Columns w[.][0..C) of w [depth, units] -> s: per 4 k, per column, the int16
// [w0 w2 w1 w3] + offset (PackRows's layout, a column for a row).
template <int C>
inline void PackColumns(const int8_t* w, int units, int depth, int32_t offset, int16_t* s) {
  const int quads = depth / 4;
#if EMBBERT_AOT_DSP
  if (C == 4) {  // 4 loads, 8 extends, 8 packs, 8 stores per 16 elements
    const uint32_t off2 = (static_cast<uint32_t>(offset) & 0xFFFF) | (static_cast<uint32_t>(offset) << 16);
    uint32_t* out = reinterpret_cast<uint32_t*>(s);
    const int8_t* w1 = w + units;  // rows k + 1 (and k + 3 at 2 * units from it)
    const int two = 2 * units, four = 4 * units;
    for (int q = 0; q < quads; ++q, w += four, w1 += four, out += 8) {
      // rows k and k + 2 (e, f): their columns [0 2], then [1 3], as int16 + offset
      uint32_t r = Word(w), t = Word(w + two);
      uint32_t e = __sxtab16(off2, r), f = __sxtab16(off2, t);
      out[0] = PackLow(e, f);   // column 0: [k0 k2]
      out[4] = PackHigh(e, f);  // column 2
      e = Sxtab16Ror8(off2, r), f = Sxtab16Ror8(off2, t);
      out[2] = PackLow(e, f);   // column 1
      out[6] = PackHigh(e, f);  // column 3
      r = Word(w1), t = Word(w1 + two);  // rows k + 1 and k + 3: [k1 k3]
      e = __sxtab16(off2, r), f = __sxtab16(off2, t);
      out[1] = PackLow(e, f);
      out[5] = PackHigh(e, f);
      e = Sxtab16Ror8(off2, r), f = Sxtab16Ror8(off2, t);
      out[3] = PackLow(e, f);
      out[7] = PackHigh(e, f);
    }
    return;
  }
#endif
  for (int q = 0; q < quads; ++q, w += 4 * units) {
    for (int c = 0; c < C; ++c) {
      *s++ = static_cast<int16_t>(w[c] + offset);
      *s++ = static_cast<int16_t>(w[2 * units + c] + offset);
      *s++ = static_cast<int16_t>(w[units + c] + offset);
      *s++ = static_cast<int16_t>(w[3 * units + c] + offset);
    }
  }
}

// Columns [0, C) of w [depth, units] against all rows of x [rows, depth]: out[r][c] at
// stride units. The packed columns are DotQuads's "rows" and x's rows its w.
template <int C>
inline void Columns(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units, int depth,
                    int8_t* out, int16_t* scratch) {
  PackColumns<C>(w, units, depth, p.w_offset, scratch);
  const QuantizedMultiplier q(p.multiplier[0], p.shift[0]);
  const int quads = depth / 4;
  int r = 0;
#if EMBBERT_AOT_DSP
  if (C == 4 && depth >= 8 && depth % 8 == 0) {  // DotUnits4 over chunks of rows, then SMMULR where it can
    constexpr int kChunk = 32;
    const uint32_t off2 = (static_cast<uint32_t>(p.x_offset) & 0xFFFF) | (static_cast<uint32_t>(p.x_offset) << 16);
    const bool small = int64_t{depth} * 256 * 256 <= q.SmallLimit();
    const int32_t zero = 0;
    int32_t acc[kChunk * 4];
    for (; r < rows; r += kChunk) {
      const int chunk = rows - r < kChunk ? rows - r : kChunk;
      UnitLoopState state = {&zero, 0, acc, chunk};
      DotUnits4(reinterpret_cast<const uint32_t*>(scratch), x + r * depth, depth, off2, &state);
      for (int k = 0; k < chunk; ++k) Requantize4(q, small, p.out_offset, acc + 4 * k, out + (r + k) * units, 1);
    }
    return;
  }
#endif
  for (; r < rows; ++r, x += depth, out += units) {
    int32_t acc[C] = {};
    DotQuads<C>(scratch, x, quads, p.x_offset, acc);
    for (int k = 4 * quads; k < depth; ++k) {
      const int32_t xk = x[k] + p.x_offset;
      for (int c = 0; c < C; ++c) acc[c] += xk * (w[k * units + c] + p.w_offset);
    }
    for (int c = 0; c < C; ++c) out[c] = Saturate8(q.Apply(acc[c]) + p.out_offset);
  }
}

#if EMBBERT_AOT_DSP
// One row of x against w [depth, units] (the last layer's [CLS] P . V), without
// packing w's columns for a single row: per 4 units and 4 k, the row's packed
// [x0 x2] and [x1 x3] (PackRows<1>) against pairs made from w's rows k..k+3
// where they lie: PKHBT / PKHTB join rows k and k + 2 (then k + 1 and k + 3)
// into [k.u0 k.u1 k2.u0 k2.u1] and [k.u2 k.u3 k2.u2 k2.u3], which SXTAB16 (and
// ROR 8) turn into the int16 pairs of units 0 and 1 (2 and 3); w_offset is
// left to the caller, as DotRow3's.
// Per 16 MACs: 4 loads of w (rows at v + 0, units, 2 units, 3 units), 1 add,
// 4 packs, 8 extends, 8 SMLAD, 1 double-word load of x; four quads per
// iteration, then CMP and BNE = 106 instructions per 64 MACs (a depth that is
// an odd multiple of 8 enters the loop halfway). The loop ends on kSentinel
// after the packed row, as DotRow3's. a[0..4) += the 4 dot products over
// depth (a multiple of 8, at least 8).
#define EMBBERT_AOT_COLUMNS4(x, row, row2)               \
  "ldr %[lo], [%[v]" row "]\n"                          \
  "ldr %[hi], [%[v], " row2 "]\n"                       \
  "pkhbt %[e], %[lo], %[hi], lsl #16\n"                 \
  "pkhtb %[hi], %[hi], %[lo], asr #16\n"                \
  "sxtb16 %[lo], %[e]\n"                                \
  "smlad %[a0], %[" x "], %[lo], %[a0]\n"               \
  "sxtb16 %[e], %[e], ror #8\n"                         \
  "smlad %[a1], %[" x "], %[e], %[a1]\n"                \
  "sxtb16 %[lo], %[hi]\n"                               \
  "smlad %[a2], %[" x "], %[lo], %[a2]\n"               \
  "sxtb16 %[hi], %[hi], ror #8\n"                       \
  "smlad %[a3], %[" x "], %[hi], %[a3]\n"
#define EMBBERT_AOT_QUAD_OF_ROWS                         \
  EMBBERT_AOT_COLUMNS4("x02", "", "%[units], lsl #1")    \
  EMBBERT_AOT_COLUMNS4("x13", ", %[units]", "%[units3]") \
  "add %[v], %[v], %[units], lsl #2\n"                  \
  "ldrd %[x02], %[x13], [%[xs]], #8\n"
__attribute__((noinline)) inline void DotColumns4(const uint32_t* xs, const int8_t* v, int units, int depth,
                                                  int32_t* a) {
  uint32_t x02, x13, lo, hi, e = depth & 8;  // then a temporary
  __asm volatile("ldrd %[x02], %[x13], [%[xs]], #8\n"
                 "cmp %[e], #0\n"
                 "bne 2f\n"
                 "1:\n" EMBBERT_AOT_QUAD_OF_ROWS EMBBERT_AOT_QUAD_OF_ROWS
                 "2:\n" EMBBERT_AOT_QUAD_OF_ROWS EMBBERT_AOT_QUAD_OF_ROWS
                 "cmp %[x02], %[end]\n"
                 "bne 1b\n"
                 : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]), [v] "+r"(v), [xs] "+r"(xs),
                   [x02] "=&r"(x02), [x13] "=&r"(x13), [lo] "=&r"(lo), [hi] "=&r"(hi), [e] "+r"(e)
                 : [units] "r"(units), [units3] "r"(3 * units), [end] "i"(kSentinel)
                 : "cc", "memory");
}
#undef EMBBERT_AOT_QUAD_OF_ROWS
#undef EMBBERT_AOT_COLUMNS4

// MatMulRhsDepthUnits for one row and at least 4 units: DotColumns4 over groups
// of 4 units (the last one overlapping the one before when units is not a
// multiple of 4) and the first 8 * (depth / 8) k, the rest in plain C.
inline void RowRhsDepthUnits(const MatMulParams& p, const int8_t* x, const int8_t* w, int units, int depth,
                             int8_t* out, int16_t* scratch) {
  const int even = depth / 8 * 8;  // the k that DotColumns4 does
  PackRows<1>(x, even, p.x_offset, scratch);
  uint32_t* packed = reinterpret_cast<uint32_t*>(scratch);
  packed[even / 2] = kSentinel;  // 2 words within ScratchBytes(depth)
  const int32_t w_share = static_cast<int32_t>(WOffsetShare(packed, even / 2, p.w_offset));
  const QuantizedMultiplier q(p.multiplier[0], p.shift[0]);
  for (int u = 0; u < units; u += 4) {
    const int u0 = u + 4 <= units ? u : units - 4;
    int32_t acc[4] = {w_share, w_share, w_share, w_share};
    if (even > 0) DotColumns4(packed, w + u0, units, even, acc);
    for (int k = even; k < depth; ++k) {
      const int32_t xk = x[k] + p.x_offset;
      for (int c = 0; c < 4; ++c) acc[c] += xk * (w[k * units + u0 + c] + p.w_offset);
    }
    for (int c = 0; c < 4; ++c) out[u0 + c] = Saturate8(q.Apply(acc[c]) + p.out_offset);
  }
}
#endif

// x [rows, depth] . w [depth, units] -> out [rows, units] (per-tensor requantization, no bias)
inline void MatMulRhsDepthUnits(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units,
                                int depth, int8_t* out, void* scratch) {
  int16_t* s = static_cast<int16_t*>(scratch);
#if EMBBERT_AOT_DSP
  if (rows == 1 && units >= 4) {
    RowRhsDepthUnits(p, x, w, units, depth, out, s);
    return;
  }
#endif
  int u = 0;
  for (; u + 4 <= units; u += 4) Columns<4>(p, x, rows, w + u, units, depth, out + u, s);
  switch (units - u) {
    case 3: Columns<3>(p, x, rows, w + u, units, depth, out + u, s); break;
    case 2: Columns<2>(p, x, rows, w + u, units, depth, out + u, s); break;
    case 1: Columns<1>(p, x, rows, w + u, units, depth, out + u, s); break;
    default: break;
  }
}

}  // namespace matmul
}  // namespace kernels
}  // namespace embbert_aot
