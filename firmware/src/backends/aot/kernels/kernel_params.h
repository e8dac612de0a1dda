// Parameters of the aot kernels, shared by both implementations:
// reference/ (TFLite-Micro's reference kernels, the oracle) and optimized/
// (ours). The code generator (convert/aot/codegen.py) fills them at convert
// time; the board description picks the folder (board.toml build.aot_kernels).
#pragma once
#include <stdint.h>

namespace embbert_aot {
namespace kernels {

// out[r][u] = clamp(MultiplyByQuantizedMultiplier(sum_k (x[r][k] + x_offset) * (w[u][k] + w_offset)
//                                                 + bias[u], multiplier, shift) + out_offset, -128, 127)
// FULLY_CONNECTED: x the input [rows, depth], w the weights [units, depth].
// BATCH_MATMUL (adj_y): x the LHS [rows, depth], w the RHS [units, depth].
struct MatMulParams {
  int32_t x_offset;           // minus x's zero point
  int32_t w_offset;           // minus w's zero point
  int32_t out_offset;         // the output's zero point
  const int32_t* multiplier;  // [units] when per_channel, else [1]
  const int* shift;           // idem
  bool per_channel;
};

// LOGISTIC, int8 -> int8 with output zero point -128 (logistic_common.cc's Prepare)
struct LogisticParams {
  int32_t input_zero_point, input_range_radius, input_multiplier, input_left_shift;
};

// DEPTHWISE_CONV_2D along one axis (VALID, stride 1, dilation 1, depth multiplier 1):
// out[t][c] = clamp(MultiplyByQuantizedMultiplier(sum_j (x[t + j][c] + x_offset) * w[j][c] + bias[c],
//                                                 multiplier[c], shift[c]) + out_offset, -128, 127)
struct DepthwiseParams {
  int32_t x_offset;           // minus x's zero point
  int32_t out_offset;         // the output's zero point
  const int32_t* multiplier;  // [channels]
  const int32_t* shift;       // [channels]
  int32_t pad_before;         // rows of x's zero point before x (a PAD folded in): 0, or taps - 1 for causal
};

// MEAN or SUM over the last axis, int8 (reduce.cc): TFLite-Micro's Mean when the
// input and output quantization are the same (a truncating integer mean), else
// its QuantizedMeanOrSum (the rescaled sum, minus the zero points).
struct ReduceParams {
  bool quantized;           // QuantizedMeanOrSum, else Mean
  bool compute_sum;         // SUM, else MEAN
  int32_t input_zero_point;
  int32_t output_multiplier;  // Prepare's, before QuantizedMeanOrSum folds in 1 / count
  int output_shift;
  int32_t output_zero_point;
};

}  // namespace kernels
}  // namespace embbert_aot
