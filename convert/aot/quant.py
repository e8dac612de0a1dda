"""TFLite-Micro's Prepare-time arithmetic, in Python, bit for bit.

Each function mirrors the C++ of tensorflow/lite/kernels/internal/quantization_util.cc
(and the kernel Prepare that calls it): the same float -> double casts, the same
frexp and round-half-away-from-zero. A scale read from the flatbuffer is a
float32; where the C++ multiplies two floats before widening, so do we
(np.float32), because that product is rounded to float first.
"""

from __future__ import annotations

import math

import numpy as np


def _round(x: float) -> int:
    """TfLiteRound = std::round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier(double) -> (int32 multiplier, shift)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = _round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(m: float) -> tuple[int, int]:
    q, shift = quantize_multiplier(m)
    assert shift <= 0, (m, shift)
    return q, shift


def f32(x) -> float:
    return float(np.float32(x))


def conv_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> float:
    """GetQuantizedConvolutionMultipler: the float product, widened, / output."""
    prod = float(np.float32(input_scale) * np.float32(filter_scale))
    return prod / f32(output_scale)


def batch_matmul_multiplier(lhs_scale: float, rhs_scale: float, output_scale: float) -> float:
    """batch_matmul.cc, int8: the scales widened to double first, then multiplied (not
    GetQuantizedConvolutionMultipler's float product: on EmbBERT's score maps the two
    give multipliers tens of units apart, and host TFLite-Micro's logits follow this one)."""
    return f32(lhs_scale) * f32(rhs_scale) / f32(output_scale)


def per_channel_multipliers(input_scale: float, filter_scales, output_scale: float) -> tuple[list[int], list[int]]:
    """Per-channel FC / conv (PopulateConvolutionQuantizationParams): in double."""
    mults, shifts = [], []
    for s in filter_scales:
        q, sh = quantize_multiplier(f32(input_scale) * f32(s) / f32(output_scale))
        mults.append(q)
        shifts.append(sh)
    return mults, shifts


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """softmax_common.cc, int8 -> int8: (input_multiplier, input_left_shift, diff_min)."""
    k_bits = 5
    real = min(f32(beta) * f32(input_scale) * (1 << (31 - k_bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    assert left_shift >= 0
    diff_min = int(-1.0 * calculate_input_radius(k_bits, left_shift))
    return mult, left_shift, diff_min


def logistic_params(input_scale: float) -> tuple[int, int, int]:
    """logistic_common.cc, int8: (input_multiplier, input_left_shift, input_range_radius)."""
    k_bits = 4
    real = f32(input_scale) * float(1 << (31 - k_bits))
    q, left_shift = math.frexp(real)
    mult = _round(q * (1 << 31))
    radius = calculate_input_radius(k_bits, left_shift, 31)
    return mult, left_shift, radius


def add_params(s1: float, s2: float, so: float) -> dict:
    """add_common.cc CalculateOpDataAdd, int8 (left_shift 20)."""
    left_shift = 20
    twice_max = 2 * max(f32(s1), f32(s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(f32(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(f32(s2) / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * f32(so)))
    return dict(left_shift=left_shift, input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                input2_shift=sh2, output_multiplier=mo, output_shift=sho)


def mul_params(s1: float, s2: float, so: float) -> tuple[int, int]:
    """mul_common.cc: double(s1) * double(s2) / double(so)."""
    return quantize_multiplier(f32(s1) * f32(s2) / f32(so))


def rsqrt_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """elementwise.cc SetRsqrtOutputMultiplier."""
    return quantize_multiplier(1.0 / (math.sqrt(f32(input_scale)) * f32(output_scale)))


def sub_params(s1: float, s2: float, so: float) -> dict:
    """sub_common.cc CalculateOpDataSub, int8: unlike ADD, the ratios are computed
    in float and only then widened to double."""
    f = np.float32
    left_shift = 20
    twice_max = f(2) * max(f(s1), f(s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(f(s1) / twice_max))
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(f(s2) / twice_max))
    mo, sho = quantize_multiplier_smaller_than_one_exp(float(twice_max / (f(1 << left_shift) * f(so))))
    return dict(left_shift=left_shift, input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                input2_shift=sh2, output_multiplier=mo, output_shift=sho)


def tanh_params(input_scale: float) -> tuple[int, int, int]:
    """tanh.cc CalculateArithmeticOpData, int8: the logistic formula."""
    return logistic_params(input_scale)
