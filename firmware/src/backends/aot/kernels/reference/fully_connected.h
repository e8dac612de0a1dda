// FULLY_CONNECTED, int8: TFLite-Micro's reference kernel (the oracle), inlined into the
// generated code as a direct call would be (its constant shapes propagate).
#pragma once
#include "reference_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"

namespace embbert_aot {
namespace kernels {

constexpr int FullyConnectedScratchBytes(int /*depth*/) { return 0; }

// never over its input: each output element reads a whole row of x
constexpr bool FullyConnectedInPlace(int /*units*/, int /*depth*/) { return false; }

// x [rows, depth], w [units, depth], bias [units] or nullptr -> out [rows, units]
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void FullyConnected(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units, int depth,
                    const int32_t* bias, int8_t* out, void* /*scratch*/) {
  const tflite_micro::FullyConnectedParams q = ReferenceParams(p);  // per channel: multiplier[0], shift[0] unused
  const int32_t dx[] = {rows, depth}, dw[] = {units, depth}, db[] = {units}, dout[] = {rows, units};
  const tflite_micro::RuntimeShape sx(2, dx), sw(2, dw), sb(1, db), so(2, dout);
  if (p.per_channel) {
    tflite_micro::reference_integer_ops::FullyConnectedPerChannel<int8_t, int8_t, int8_t, int32_t>(
        q, p.multiplier, p.shift, sx, x, sw, w, sb, bias, so, out);
  } else {
    tflite_micro::reference_integer_ops::FullyConnected<int8_t, int8_t, int8_t, int32_t>(q, sx, x, sw, w, sb, bias,
                                                                                          so, out);
  }
}

}  // namespace kernels
}  // namespace embbert_aot
