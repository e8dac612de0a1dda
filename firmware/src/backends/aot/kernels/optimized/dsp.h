// What the optimized kernels share: the DSP extension's ACLE intrinsics where
// the core has them (Cortex-M4/M7: __ARM_FEATURE_DSP), plain C elsewhere.
#pragma once
#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EMBBERT_AOT_DSP 1
#else
#define EMBBERT_AOT_DSP 0
#endif

namespace embbert_aot {
namespace kernels {

#if EMBBERT_AOT_DSP
// __sxtab16(a, __ror(b, 8)) in one instruction (GCC 12's arm_acle.h has no __ror,
// and does not fold a rotate into SXTAB16's operand by itself).
inline uint32_t Sxtab16Ror8(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

// [a's low half, b's low half] (PKHBT ... LSL #16; GCC 12 emits UXTH and ORR for the C)
inline uint32_t PackLow(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

// [a's high half, b's high half] (PKHTB)
inline uint32_t PackHigh(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
  return r;
}

// __sxtb16(__ror(b, 8)) in one instruction
inline uint32_t Sxtb16Ror8(uint32_t b) {
  uint32_t r;
  __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(b));
  return r;
}
#endif

// v clamped to int8 (SSAT with the DSP extension)
inline int8_t Saturate8(int32_t v) {
#if EMBBERT_AOT_DSP
  return static_cast<int8_t>(__ssat(v, 8));
#else
  return static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}

}  // namespace kernels
}  // namespace embbert_aot
