// -include'd into model_aot.cc by the per-op profile build (aot_profile_main.cc).
#pragma once
extern "C" void ProfileOp(int op);
#define EMBBERT_AOT_TRACE(op, data, bytes) ProfileOp(op)
