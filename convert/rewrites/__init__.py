"""The exact rewrites of the converter's int8 flatbuffer, one per module.

Each takes a `TfliteModel` (convert/tflite_model.py), changes it in place and
returns how many times it fired. None changes an op's int8 arithmetic, so
TFLite-Micro's logits do not change by a bit (tests/test_rewrite_<name>.py
proves each on host TFLite-Micro). `convert.optimize.optimize` runs them in order:

- negative_index_guards: GATHER reads the ids directly;
- depthwise_convs: grouped CONV_2D -> DEPTHWISE_CONV_2D;
- layout_chains: TRANSPOSE/RESHAPE chains that move nothing -> one RESHAPE;
- rhs_transposes: BATCH_MATMUL's computed right-hand side transposed by an op;
- dead: ops nobody reads, and what only they used;
- transposes_again: a transposed tensor transposed back instead of kept;
- schedule: the op order with the smallest planned arena (convert/arena_plan.py);
- offline_plan: that plan stored for TFLite-Micro.
"""
