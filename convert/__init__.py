"""embbert.convert: a fine-tuned run -> full-int8 TFLite, proven on TFLite-Micro.

    run dir -> export.py (ONNX) -> quantize.py (onnx2tf + TFLiteConverter)
            -> check_ops.py -> exact_mask.py (padded keys) -> optimize.py (exact rewrites, op order, offline arena plan)
            -> check_ops.py -> parity.py, arena.py -> aot/artifact.py (the aot backend's C++ and plan,
               per kernel set), carray.py, manifest.py -> artifact dir (everything `embbert build` compiles)

Every .tflite is read (and written) by tflite_model.py; optimize.py runs the
rewrites of rewrites/, one per module; arena_plan.py is the one arena planner
(TFLite-Micro's offline plan and the aot backend's arena).

`pipeline.convert_run` ties the steps together; `embbert convert` calls it.
"""

# The int8 graph's design: bumped whenever a change to export/quantize/optimize
# changes the int8 model's numerics. Result files that carry an int8 figure
# record it, so a study knows which conversions are stale.
# 2: padded keys masked by SELECT_V2 to the int8 minimum before the softmax and
#    to probability 0 after it (exact_mask.py), instead of a -32 ADD.
GRAPH_VERSION = 2
