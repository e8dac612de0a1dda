"""The tflm backend (firmware/src/backends/tflm): TFLite-Micro's MicroInterpreter.

TFLite-Micro's .cc sources are not installable here (real boards get them
through PlatformIO lib_deps), so the backend is never linked nor run on a
board here. What is checked:
- its sources, with the sources `embbert build --backend tflm` generates,
  compile (-c, -Werror) for the nucleo boards' Cortex-M4/M7 against
  TFLite-Micro's own headers (xmos-ai-tools 1.4.2 wheel, namespace
  tflite_micro) and gemmlowp, and the object file asks TFLite-Micro for
  exactly the registrations of the manifest's ops;
- the resolver table (op -> MicroMutableOpResolver::Add<Op>) against those
  headers;
- the runner's own logic (padding to L with pad_id, the failure details, the
  older ErrorReporter constructor), built for the host against a small fake
  TFLite-Micro written here and run;
- the build's choices: default backend, model-fits checks per backend, the
  real boards' tflm environments in platformio.ini, the one-line offline error.
Skips, saying why, where the cached headers or arm-none-eabi-g++ are absent.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import run_cli

from embbert import pinned
from embbert.convert import carray
from embbert.convert.aot import headers
from embbert.device import build
from embbert.device.boards import board_names, load_board
from embbert.device.linker_map import read_map
from embbert.device.paths import FIRMWARE_DIR
from embbert.device.platformio_ini import project_config, write_boards_ini
from embbert.errors import UserError
from embbert.tokenizer import default_tokenizer

TFLM_DIR = FIRMWARE_DIR / "src" / "backends" / "tflm"
# The ops of EmbBERT fine-tuned on sms_spam as converted today (bench/results/convert.json: 17 ops, 106
# operators; LESS, CAST and CONV_2D are rewritten away by convert/optimize.py).
EMBBERT_OPS = ["ADD", "BATCH_MATMUL", "CONCATENATION", "DEPTHWISE_CONV_2D", "EQUAL", "FULLY_CONNECTED", "GATHER",
               "LOGISTIC", "MEAN", "MUL", "PAD", "RESHAPE", "RSQRT", "SELECT_V2", "SOFTMAX", "STRIDED_SLICE",
               "TRANSPOSE"]
# discovered from boards/*/board.toml, never listed here
REAL_BOARDS = [name for name in board_names() if load_board(name).kind == "hardware"]


def _cached_include_dirs():
    """TFLite-Micro's and gemmlowp's include trees, where setup.sh unzipped them (never downloads)."""
    dirs = []
    for requirement, _, inc in headers.WHEELS.values():
        found = pinned.cached("aot-headers", requirement)
        if found is None or not (found / inc).is_dir():
            return None
        dirs.append(found / inc)
    return dirs


INCLUDES = _cached_include_dirs()
needs_headers = pytest.mark.skipif(
    INCLUDES is None, reason="TFLite-Micro's headers (xmos-ai-tools 1.4.2) and gemmlowp (tensorflow-cpu 2.20.0) are "
    "not in the cache; ./setup.sh unzips them (python -m embbert.convert.aot.headers)")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None,
                               reason="arm-none-eabi-g++ not installed (apt-get install gcc-arm-none-eabi ...)")


def _artifact(root, ops, labels=("ham", "spam"), L=64, pad_id=0, arena=297_320, with_model=True):
    """A stand-in artifact: tokenizer, a complete manifest, model.tflite and model_data.cc
    (bytes that are not a model, never parsed on these paths)."""
    from embbert.convert.manifest import MANIFEST_VERSION, Manifest, Parity

    root.mkdir(parents=True, exist_ok=True)
    data = bytes(range(64))
    sha = hashlib.sha256(data).hexdigest()
    if with_model:
        (root / "model.tflite").write_bytes(data)
    (root / "model_data.h").write_text(carray.header("test"))
    (root / "model_data.cc").write_text(carray.source(data, "test", sha))
    tokenizer = default_tokenizer()[1].read_bytes()
    (root / "tokenizer.json").write_bytes(tokenizer)
    manifest = {"manifest_version": MANIFEST_VERSION, "model": "test", "config": {}, "task": "test",
                "labels": list(labels),
                "sequence_length": L, "pad_id": pad_id, "input": {"name": "ids", "dtype": "int32", "shape": [1, L]},
                "output": {"name": "logits", "dtype": "int8", "shape": [1, len(labels)],
                           "quantization": {"scale": 0.1, "zero_point": 0}},
                "model_file": {"sha256": sha, "path": "model.tflite", "bytes": len(data)},
                "tokenizer_file": {"path": "tokenizer.json", "sha256": hashlib.sha256(tokenizer).hexdigest(),
                                   "bytes": len(tokenizer)},
                "ops": {op: 1 for op in ops}, "op_count": len(ops), "flash_bytes": len(data), "arena_bytes": arena,
                "arena": {"minimal_bytes": arena, "used_bytes": arena, "head_bytes": 0, "tail_bytes": 0},
                "calibration_sentences": 10, "parity": dict.fromkeys(Parity.model_fields, 0), "toolchain": {},
                "aot": {}}
    Manifest.model_validate(manifest)  # complete, as `embbert convert` writes it
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root, manifest


def _arm_flags(board, gen):
    spec = load_board(board).build
    config = json.loads((gen / "build.json").read_text())
    # xmos-ai-tools patched kernel_util.h to read TfLiteTensor::allocation_type, which the
    # TF_LITE_STATIC_MEMORY layout lacks (xmos builds those headers with its own NO_INTERPRETER);
    # upstream TFLite-Micro builds with it, and so do the boards. Left out of this compile check only.
    config["defines"].pop("TF_LITE_STATIC_MEMORY", None)
    return ["-std=gnu++17", "-O2", f"-mcpu={spec.cpu}", "-mthumb", f"-mfpu={spec.fpu}", f"-mfloat-abi={spec.float_abi}",
            "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-ffp-contract=off", "-Wall", "-Wextra",
            "-Werror", "-DEMBBERT_TFLM_NS=tflite_micro", *[f"-D{k}={v}" for k, v in config["defines"].items()],
            f"-I{FIRMWARE_DIR / 'src'}", f"-I{TFLM_DIR}", f"-I{gen}", *[f"-isystem{d}" for d in INCLUDES]]


def _compile(flags, src, obj):
    proc = subprocess.run(["arm-none-eabi-g++", *flags, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _registrations(obj):
    """The TFLite-Micro kernels an object file asks for: Register_<OP>() it leaves undefined."""
    nm = subprocess.run(["arm-none-eabi-nm", "-C", "--undefined-only", str(obj)], capture_output=True, text=True,
                        check=True).stdout
    return set(re.findall(r"Register_(\w+)\(\)", nm))


# --- compile checks against TFLite-Micro's headers ----------------------------------------------

@needs_headers
@needs_arm
@pytest.mark.parametrize("board", [n for n in REAL_BOARDS if load_board(n).build.cpu.startswith("cortex-m")])
def test_tflm_backend_compiles_for_the_board_with_exactly_the_manifest_ops(board, tmp_path):
    art, manifest = _artifact(tmp_path / "art", EMBBERT_OPS, L=256)
    gen = tmp_path / "gen"
    report = build.generate_sources(art, gen, "tflm", manifest)
    assert report["tflm"]["arena_bytes"] == 299_488 and report["tflm"]["ops"] == EMBBERT_OPS  # + 2,160, to 16
    assert json.loads((gen / "build.json").read_text())["backend"] == "tflm"
    flags = _arm_flags(board, gen)
    for src in [*sorted(TFLM_DIR.glob("*.cc")), gen / "model_data.cc"]:
        _compile(flags, src, tmp_path / f"{src.stem}.o")
    assert _registrations(tmp_path / "model_runner_tflm.o") == set(EMBBERT_OPS)  # exactly, no AllOpsResolver
    undefined = subprocess.run(["arm-none-eabi-nm", "--undefined-only", str(tmp_path / "model_runner_tflm.o")],
                               capture_output=True, text=True, check=True).stdout.split()
    assert not {"abort", "malloc", "_sbrk"} & set(undefined)
    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(tmp_path / "model_runner_tflm.o")], capture_output=True,
                           text=True, check=True).stdout
    bss = int(re.search(r"^\.bss\s+(\d+)", sizes, re.M).group(1))
    assert 299_488 <= bss < 299_488 + 2048  # the arena, statically, plus the interpreter's storage


def test_tflm_defines_are_tflite_micros_release_configuration(tmp_path):
    """The defines TFLite-Micro's own builds set: the runner and the library must agree on
    TfLiteTensor's layout (TF_LITE_STATIC_MEMORY), and a failed check must halt, not abort()."""
    art, manifest = _artifact(tmp_path / "art", EMBBERT_OPS)
    build.generate_sources(art, tmp_path / "gen", "tflm", manifest)
    defines = json.loads((tmp_path / "gen" / "build.json").read_text())["defines"]
    for name in ("TF_LITE_STATIC_MEMORY", "TF_LITE_MCU_DEBUG_LOG", "TF_LITE_STRIP_ERROR_STRINGS", "NDEBUG"):
        assert defines.get(name) == 1, name


@needs_headers
@needs_arm
def test_resolver_table_matches_tflite_micro_headers(tmp_path):
    """Every op of the table is a BuiltinOperator and has its Add method: all
    of them registered in one resolver compile."""
    tflm = INCLUDES[0] / "tensorflow" / "lite"
    schema = (tflm / "schema" / "schema_generated.h").read_text()
    enumerators = set(re.findall(r"^\s*BuiltinOperator_(\w+) = -?\d+", schema, re.M))
    assert set(build.TFLM_ADD_METHODS) <= enumerators, set(build.TFLM_ADD_METHODS) - enumerators
    resolver = (tflm / "micro" / "micro_mutable_op_resolver.h").read_text()
    methods = set(re.findall(r"TfLiteStatus Add(\w+)\(", resolver))
    assert set(build.TFLM_ADD_METHODS.values()) <= methods, set(build.TFLM_ADD_METHODS.values()) - methods
    ops = sorted(build.TFLM_ADD_METHODS)
    art, manifest = _artifact(tmp_path / "art", ops)
    gen = tmp_path / "gen"
    build.generate_sources(art, gen, "tflm", manifest)
    check = tmp_path / "all_ops.cc"  # the generated RegisterOps, instantiated with the real resolver
    check.write_text('#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n#include "tflm_ops.h"\n'
                     "tflite_micro::MicroMutableOpResolver<tflm_model::kNumOps> g_resolver;\n"
                     "const char* register_all() { return tflm_model::RegisterOps(g_resolver); }\n")
    _compile(_arm_flags("nucleo-l4r5zi", gen), check, tmp_path / "all_ops.o")
    # each Add call resolved to the real method (the fallback, `return false`, would register nothing)
    assert _registrations(tmp_path / "all_ops.o") == set(ops)


def test_tflm_inputs_are_checked_before_anything_is_written(tmp_path):
    art, manifest = _artifact(tmp_path / "art", ["ADD", "FLEX_THING"])
    with pytest.raises(UserError, match="cannot register: FLEX_THING"):
        build.check_tflm_artifacts(art, manifest)
    manifest["ops"] = {"ADD": 1}
    build.check_tflm_artifacts(art, manifest)
    sha, manifest["model_file"]["sha256"] = manifest["model_file"]["sha256"], "f" * 64
    with pytest.raises(UserError, match="model_data.cc is not the model"):
        build.check_tflm_artifacts(art, manifest)
    manifest["model_file"]["sha256"] = sha
    (art / "model_data.cc").unlink()
    with pytest.raises(UserError, match="no model_data.cc"):
        build.check_tflm_artifacts(art, manifest)
    (art / "manifest.json").write_text(json.dumps(manifest))  # through the CLI: one line, exit 2, nothing written
    r = run_cli("build", art, "--board", "nucleo-h743zi", "--backend", "tflm")
    assert r.returncode == 2 and "no model_data.cc" in r.stderr and not (art / "build").exists()


# --- the runner's logic, on the host, over a fake TFLite-Micro ----------------------------------

# The fake's op enum: the model's ops, then the ones the failure scenarios add.
FAKE_ENUM = [*EMBBERT_OPS, "LESS", "TANH", "CUSTOM"]


def _fake_tflm_header() -> str:
    """A fake of the TFLite-Micro API the tflm runner uses (namespace tflite, as
    in the Arduino libraries): a model of EMBBERT_OPS, one operator each, and a
    resolver with an Add method per op (BATCH_MATMUL's can be left out). Like
    TFLite-Micro (tensorflow/lite/kernels/op_macros.h), its library code halts
    a failed check in a loop under TF_LITE_MCU_DEBUG_LOG and calls abort()
    without it."""
    enum = ", ".join(f"BuiltinOperator_{op}" for op in FAKE_ENUM)
    names = ", ".join(f'"{op}"' for op in FAKE_ENUM)
    adds = []
    for op in EMBBERT_OPS:
        method = f"  TfLiteStatus Add{build.TFLM_ADD_METHODS[op]}() {{ return add(BuiltinOperator_{op}); }}"
        adds.append(f"#ifndef FAKE_NO_BATCH_MATMUL\n{method}\n#endif" if op == "BATCH_MATMUL" else method)
    return r"""#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#define TFLITE_SCHEMA_VERSION (3)
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt32 = 2, kTfLiteInt8 = 9 } TfLiteType;
struct TfLiteIntArray { int size; int data[4]; };
struct TfLiteTensor { TfLiteType type; TfLiteIntArray* dims; union { int32_t* i32; int8_t* int8; } data; };
namespace tflite {
enum BuiltinOperator { """ + enum + r""" };
inline const char* EnumNameBuiltinOperator(BuiltinOperator op) {
  static const char* names[] = {""" + names + r"""};
  return names[op];
}
struct String { const char* s; const char* c_str() const { return s; } };
struct OperatorCode { BuiltinOperator op; String name; const String* custom_code() const { return &name; } };
inline BuiltinOperator GetBuiltinCode(const OperatorCode* c) { return c->op; }
struct Operator { uint32_t index; uint32_t opcode_index() const { return index; } };
template <class T, unsigned N>
struct Vector {  // flatbuffers::Vector of tables: size(), Get(i) -> const T*
  T v[N];
  unsigned n;
  unsigned size() const { return n; }
  const T* Get(unsigned i) const { return &v[i]; }
  void push(T x) { v[n++] = x; }
};
struct SubGraph {
  Vector<Operator, 32> ops;
  const Vector<Operator, 32>* operators() const { return &ops; }
};
struct Model {
  uint32_t v; Vector<OperatorCode, 32> codes; Vector<SubGraph, 1> graphs;
  uint32_t version() const { return v; }
  const Vector<OperatorCode, 32>* operator_codes() const { return &codes; }
  const Vector<SubGraph, 1>* subgraphs() const { return &graphs; }
};
class ErrorReporter {
 public:
  virtual ~ErrorReporter() {}
  virtual int Report(const char* format, va_list args) = 0;
};
}  // namespace tflite
namespace fake {
extern tflite::Model model;
extern bool allocate_ok, old_api_used;
extern TfLiteTensor input, output;
extern int32_t in_buf[512];
extern int8_t out_buf[8];
void check_input();  // library code with a TFLITE_CHECK (fake_impl)
}  // namespace fake
#ifdef TF_LITE_MCU_DEBUG_LOG
#define FAKE_TFLITE_ABORT for (;;) {}
#else
#include <stdlib.h>
#define FAKE_TFLITE_ABORT abort()
#endif
#define FAKE_TFLITE_CHECK(x) do { if (!(x)) { FAKE_TFLITE_ABORT; } } while (0)
namespace tflite {
inline const Model* GetModel(const void*) { return &fake::model; }
class MicroOpResolver {};
template <unsigned N>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
""" + "\n".join(adds) + r"""
  const void* FindOp(BuiltinOperator op) const {
    for (unsigned i = 0; i < n_; ++i) if (ops_[i] == op) return this;
    return nullptr;
  }
 private:
  TfLiteStatus add(BuiltinOperator op) { if (n_ == N) return kTfLiteError; ops_[n_++] = op; return kTfLiteOk; }
  BuiltinOperator ops_[N];
  unsigned n_ = 0;
};
class MicroInterpreter {
 public:
#ifdef FAKE_OLD_API
  MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t, ErrorReporter* r) {
    fake::old_api_used = r != nullptr;
  }
#else
  MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t, void* resource_variables = nullptr,
                   void* profiler = nullptr) { (void)resource_variables; (void)profiler; }
#endif
  TfLiteStatus AllocateTensors() { return fake::allocate_ok ? kTfLiteOk : kTfLiteError; }
  size_t inputs_size() const { return 1; }
  size_t outputs_size() const { return 1; }
  TfLiteTensor* input(size_t) { return &fake::input; }
  TfLiteTensor* output(size_t) { fake::output.data.int8 = fake::out_buf; return &fake::output; }
  TfLiteStatus Invoke() {  // logits: [ids that are 3 (the pad id), first id]
    fake::check_input();
    int pads = 0;
    for (int i = 0; i < fake::input.dims->data[1]; ++i) pads += fake::in_buf[i] == 3;
    fake::out_buf[0] = static_cast<int8_t>(pads);
    fake::out_buf[1] = static_cast<int8_t>(fake::in_buf[0]);
    return kTfLiteOk;
  }
};
}  // namespace tflite
"""


FAKE_TFLM = _fake_tflm_header()

# The fake library's globals: a model of EMBBERT_OPS, one operator each (constant-initialized: bare
# metal runs no static constructors), its tensors, switches; and a library function with a check.
_codes = ", ".join(f'{{tflite::BuiltinOperator_{op}, {{""}}}}' for op in EMBBERT_OPS)
_operators = ", ".join(f"{{{i}}}" for i in range(len(EMBBERT_OPS)))
FAKE_GLOBALS = r"""
namespace fake {
tflite::Model model{3, {{""" + _codes + "}, " + str(len(EMBBERT_OPS)) + "}, {{{{{" + _operators + "}, " + \
    str(len(EMBBERT_OPS)) + r"""}}}, 1}};
bool allocate_ok = true, old_api_used = false;
int32_t in_buf[512];
int8_t out_buf[8];
TfLiteIntArray in_dims{2, {1, 16}}, out_dims{2, {1, 2}};
TfLiteTensor input{kTfLiteInt32, &in_dims, {in_buf}}, output{kTfLiteInt8, &out_dims, {nullptr}};
void check_input() { FAKE_TFLITE_CHECK(input.dims != nullptr && input.dims->size == 2); }
}  // namespace fake
"""

FAKE_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "fake_tflm.h"
#include "model_runner.h"
""" + FAKE_GLOBALS + r"""int main(int argc, char** argv) {
  fake::output.data.int8 = fake::out_buf;  // (a union's second member has no brace initializer)
  const char* s = argc > 1 ? argv[1] : "ok";
  if (!strcmp(s, "alloc_fail")) fake::allocate_ok = false;
  tflite::Vector<tflite::Operator, 32>& ops = fake::model.graphs.v[0].ops;
  if (!strcmp(s, "unused_code")) fake::model.codes.push({tflite::BuiltinOperator_LESS, {""}});  // no operator uses it
  if (!strcmp(s, "model_op_missing")) {
    fake::model.codes.push({tflite::BuiltinOperator_TANH, {""}});
    ops.push({fake::model.codes.n - 1});
  }
  if (!strcmp(s, "custom_op")) {
    fake::model.codes.push({tflite::BuiltinOperator_CUSTOM, {"Mystery"}});
    ops.push({fake::model.codes.n - 1});
  }
  if (!strcmp(s, "bad_opcode_index")) ops.push({fake::model.codes.n});
  if (!strcmp(s, "bad_input")) fake::input.type = kTfLiteInt8;
  if (!strcmp(s, "schema")) fake::model.v = 2;
  const int setup = static_cast<int>(embbert::model_setup());
  const embbert::ModelInfo& m = embbert::model_info();
  uint16_t ids[20] = {2, 40, 41, 4};
  int8_t logits[2] = {-1, -1};
  const int n = !strcmp(s, "too_long") ? 17 : 4;
  const int infer = static_cast<int>(embbert::model_infer(ids, n, logits));
  printf("{\"setup\": %d, \"infer\": %d, \"error\": \"%s\", \"logits\": [%d, %d], \"input\": [", setup, infer,
         embbert::model_error(), logits[0], logits[1]);
  for (int i = 0; i < 16; ++i) printf("%s%d", i ? ", " : "", (int)fake::in_buf[i]);
  printf("], \"old_api\": %s, \"backend\": \"%s\", \"max_len\": %d, \"arena_bytes\": %u, \"labels\": [\"%s\", \"%s\"]}\n",
         fake::old_api_used ? "true" : "false", m.backend, m.max_len, (unsigned)m.arena_bytes, m.labels[0], m.labels[1]);
  return 0;
}
"""


@pytest.fixture(scope="module")
def fake_runner(tmp_path_factory):
    """Builds the runner over the fake TFLite-Micro, three ways; returns run(variant, scenario) -> dict."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no host g++")
    root = tmp_path_factory.mktemp("tflm-fake")
    inc = root / "inc"
    (inc / "tensorflow/lite/micro").mkdir(parents=True)
    (inc / "tensorflow/lite/schema").mkdir(parents=True)
    (inc / "tensorflow/lite/core/api").mkdir(parents=True)
    (inc / "fake_tflm.h").write_text(FAKE_TFLM)
    for header in ("micro/micro_interpreter.h", "micro/micro_mutable_op_resolver.h", "schema/schema_generated.h",
                   "schema/schema_utils.h", "core/api/error_reporter.h"):
        (inc / "tensorflow/lite" / header).write_text('#pragma once\n#include "fake_tflm.h"\n')
    (root / "main.cc").write_text(FAKE_MAIN)
    art, manifest = _artifact(root / "art", EMBBERT_OPS, L=16, pad_id=3, arena=1000)
    gen = root / "gen"
    build.generate_sources(art, gen, "tflm", manifest)
    binaries = {}
    for variant, defines in {"new": [], "old": ["-DFAKE_OLD_API"], "no_batch_matmul": ["-DFAKE_NO_BATCH_MATMUL"]}.items():
        exe = root / variant
        cmd = [gxx, "-std=gnu++17", "-O1", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-fno-rtti", *defines,
               f"-I{inc}", f"-I{FIRMWARE_DIR / 'src'}", f"-I{gen}", str(root / "main.cc"),
               str(TFLM_DIR / "model_runner_tflm.cc"), str(gen / "model_data.cc"), "-o", str(exe)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        binaries[variant] = exe

    def run(variant, scenario="ok"):
        out = subprocess.run([str(binaries[variant]), scenario], capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    return run


OK, FAILED, BAD_INPUT = 0, 3, 2  # embbert::RunStatus


@pytest.mark.parametrize("variant", ["new", "old"])
def test_runner_pads_to_the_fixed_length_with_pad_id(fake_runner, variant):
    r = fake_runner(variant)
    assert (r["setup"], r["infer"], r["error"]) == (OK, OK, "")
    assert r["input"] == [2, 40, 41, 4] + [3] * 12  # n ids, then pad_id up to L = 16
    assert r["logits"] == [12, 2]  # the output tensor, copied out
    assert (r["backend"], r["max_len"], r["arena_bytes"], r["labels"]) == ("tflm", 16, 3168, ["ham", "spam"])
    assert r["old_api"] is (variant == "old")  # the ErrorReporter constructor of older releases, when that is all


def test_runner_ignores_operator_codes_no_operator_uses(fake_runner):
    """A code no operator uses (the converter once left LESS behind): TFLite-Micro ignores it, so
    the runner does; it is not in the manifest's ops, hence not in the resolver."""
    r = fake_runner("new", "unused_code")
    assert (r["setup"], r["infer"], r["error"]) == (OK, OK, "") and r["logits"] == [12, 2]


def test_runner_failures_name_their_cause(fake_runner):
    r = fake_runner("new", "alloc_fail")
    assert (r["setup"], r["infer"]) == (FAILED, FAILED)
    assert "AllocateTensors failed" in r["error"] and "3168 B" in r["error"] and "arena_bytes 1000" in r["error"]
    r = fake_runner("no_batch_matmul")
    assert r["setup"] == FAILED and r["error"].startswith("op BATCH_MATMUL: this TFLite-Micro library has no kernel")
    r = fake_runner("new", "model_op_missing")
    assert r["setup"] == FAILED and r["error"].startswith("op TANH is in the model but not in the op resolver")
    r = fake_runner("new", "bad_opcode_index")
    assert r["setup"] == FAILED and "names operator code 17" in r["error"]
    r = fake_runner("new", "custom_op")
    assert r["setup"] == FAILED and "custom op Mystery" in r["error"]
    r = fake_runner("new", "bad_input")
    assert r["setup"] == FAILED and r["error"].startswith("input tensor: expected 16 int32 ids, got TfLiteType 9")
    r = fake_runner("new", "schema")
    assert r["setup"] == FAILED and "schema version 2" in r["error"]
    r = fake_runner("new", "too_long")
    assert (r["setup"], r["infer"]) == (OK, BAD_INPUT)


FAKE_LIBRARY_IMPL = r"""
#include "fake_tflm.h"
""" + FAKE_GLOBALS


@needs_arm
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
def test_tflm_platformio_wiring_offline_on_qemu_with_a_stand_in_library(tmp_path, monkeypatch):
    """What the real boards' tflm environments rely on, exercised offline: a
    lib_deps library's include path reaches the backend (it joins the project's
    sources), the files custom_embbert_skip_lib_sources names stay out of the
    build (here they #error), the generated sources and defines are used, and
    the firmware serves INFO and INFER_IDS through the runner. The library is
    the fake TFLite-Micro above, the board qemu-m4 (a copy of the project with
    one more environment; its own PlatformIO core folder)."""
    from embbert.device import platformio_env
    from embbert.device.qemu import QemuDevice

    project = tmp_path / "clone"
    shutil.copytree(FIRMWARE_DIR, project / "firmware", ignore=shutil.ignore_patterns(".pio"))
    shutil.copytree(FIRMWARE_DIR.parent / "boards", project / "boards")
    lib = tmp_path / "faketflm"
    for sub in ("micro", "schema", "core/api"):
        (lib / "src/tensorflow/lite" / sub).mkdir(parents=True)
    (lib / "src/peripherals").mkdir()
    (lib / "library.json").write_text('{"name": "FakeTFLM", "version": "0.0.1", "frameworks": "*", "platforms": "*"}')
    (lib / "src/fake_tflm.h").write_text(FAKE_TFLM)
    (lib / "src/fake_impl.cpp").write_text(FAKE_LIBRARY_IMPL)
    for header in ("micro/micro_interpreter.h", "micro/micro_mutable_op_resolver.h", "schema/schema_generated.h",
                   "schema/schema_utils.h", "core/api/error_reporter.h"):
        (lib / "src/tensorflow/lite" / header).write_text('#pragma once\n#include "fake_tflm.h"\n')
    (lib / "src/peripherals/board_only.cpp").write_text('#error "a board-specific file that must stay out"\n')
    (lib / "src/tensorflow/lite/micro/system_setup.cpp").write_text('#error "must stay out too"\n')
    ini = project / "firmware/platformio.ini"
    write_boards_ini(project / "firmware")  # the clone's boards.ini, from its boards/
    skip = load_board("nucleo-l4r5zi").pio_env("tflm")
    skipped = project_config().get(f"env:{skip}", "custom_embbert_skip_lib_sources")
    ini.write_text(ini.read_text() + f"\n[env:qemu-m4-tflm]\nextends = env:qemu-m4\nlib_deps = symlink://{lib}\n"
                   f"custom_embbert_skip_lib_sources = {skipped}\n")
    art, manifest = _artifact(tmp_path / "art", EMBBERT_OPS, L=16, pad_id=3, arena=1000)
    gen = tmp_path / "gen"
    build.generate_sources(art, gen, "tflm", manifest)
    monkeypatch.setattr(platformio_env, "core_dir", lambda: tmp_path / "core")  # never the clone's own core
    env = platformio_env.pio_env({"EMBBERT_GEN_DIR": str(gen), "PLATFORMIO_BUILD_DIR": str(tmp_path / "pio")})
    proc = subprocess.run([sys.executable, "-m", "platformio", "run", "-e", "qemu-m4-tflm"], cwd=project / "firmware",
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    elf = tmp_path / "pio/qemu-m4-tflm/firmware.elf"
    # bare metal has no process to abort nor heap: a failed TFLITE_CHECK in the library must not
    # pull in newlib's abort() and its _exit, _kill, _getpid, _sbrk (TF_LITE_MCU_DEBUG_LOG)
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    symbols = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    assert "_ZN4fake11check_inputEv" in symbols  # the library's check is linked in
    assert not {"abort", "_exit", "_kill", "_getpid", "_sbrk", "malloc"} & symbols
    board = load_board("qemu-m4")
    use = read_map(tmp_path / "pio/qemu-m4-tflm/firmware.map", board.memory.flash_regions, board.memory.ram_regions)
    assert {s.name: s.size for s in use.sections}[".data"] > 0  # the library's model (the gap: test_linker_map.py)
    with QemuDevice(elf, "qemu-m4") as dev:
        info = dev.info()
        assert (info["flash_bytes"], info["ram_bytes"]) == (use.flash_bytes, use.ram_bytes)  # the build's figures
        assert (info["backend"], info["max_len"], info["arena_bytes"]) == ("tflm", 16, 3168)
        assert info["model_sha256"] == manifest["model_file"]["sha256"] and info["labels"] == ["ham", "spam"]
        assert dev.infer_ids([2, 40, 41, 4])["logits"] == [12, 2]  # 12 pad ids up to L = 16; the first id
        assert dev.classify("hello world")["label"] == "ham"


# --- the build's choices ------------------------------------------------------------------------

def test_default_backend_is_tflm_only_where_tflite_micro_is_available():
    for name in board_names():
        board = load_board(name)
        expected = "tflm" if board.kind == "hardware" else "aot"  # emulated boards: no TFLite-Micro sources
        assert build.choose_backend(None, {"manifest_version": 1}, board) == expected, name
        assert build.choose_backend(None, None, board) == "none"
        assert build.choose_backend("aot", {"manifest_version": 1}, board) == "aot"
    with pytest.raises(UserError, match="only real boards"):
        build.choose_backend("tflm", {"manifest_version": 1}, load_board("qemu-m7"))
    assert "aot" in build.BACKEND_HELP and "tflm" in build.BACKEND_HELP and "qemu" in build.BACKEND_HELP


def test_real_boards_have_a_tflm_environment_with_tflite_micro_pinned():
    """PlatformIO's view of the environments generated from board.toml: the tflm one is the
    board's plus TFLite-Micro, at a commit or an exact version, on an exactly pinned platform."""
    config = project_config()
    for name in REAL_BOARDS:
        board = load_board(name)
        plain, tflm = f"env:{board.pio_env('aot')}", f"env:{board.pio_env('tflm')}"
        assert config.get(tflm, "custom_embbert_board") == config.get(plain, "custom_embbert_board") == name
        assert config.get(tflm, "platform") == config.get(plain, "platform") == board.upstream_platform
        assert re.fullmatch(r"\w+@\d+\.\d+\.\d+", board.upstream_platform)  # an exact release, no range
        assert config.get(tflm, "board") == config.get(plain, "board")
        (library,) = [dep for dep in config.get(tflm, "lib_deps") if "tflite-micro" in dep or "TensorFlowLite" in dep]
        assert re.search(r"\.git#[0-9a-f]{40}$|@\d+\.\d+\.\d+$", library), library  # a commit or an exact version
        assert not config.get(plain, "lib_deps", [])  # aot builds never fetch TFLite-Micro
        if "tflite-micro-arduino-examples" in library:  # the Arduino library's Nano-33-only files stay out
            assert "ArduinoBLE" in config.get(tflm, "lib_ignore")
            assert "system_setup.cpp" in config.get(tflm, "custom_embbert_skip_lib_sources")
    for name in board_names():
        if load_board(name).kind == "qemu":
            assert not load_board(name).has_tflm and f"env:{name}-tflm" not in config.sections()


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_real_board_tflm_build_offline_is_one_clear_line(board, tmp_path):
    from embbert.device.platformio_env import platform_installed

    upstream = load_board(board).upstream_platform
    if platform_installed(upstream):
        pytest.skip(f"{upstream} is installed here")
    art, _ = _artifact(tmp_path / "art", EMBBERT_OPS, L=256, arena=100_000)
    r = run_cli("build", art, "--board", board, "--backend", "tflm")
    assert r.returncode == 2 and f"needs the PlatformIO platform '{upstream}'" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # the progress line and the error
    r = run_cli("build", art, "--board", board)  # the default on a real board: tflm, same error
    assert r.returncode == 2 and f"needs the PlatformIO platform '{upstream}'" in r.stderr
    assert not (art / "build").exists()


def _small(board_name, ram_bytes):
    board = load_board(board_name)
    return board.model_copy(update={"memory": board.memory.model_copy(update={"ram_bytes": ram_bytes})})


def test_model_fits_checks_the_chosen_backends_own_figures(tmp_path):
    """aot: only its plan's arena and weights (the manifest's aot entry); tflm: the manifest's
    TFLite-Micro arena and the .tflite."""
    _, manifest = _artifact(tmp_path / "art", EMBBERT_OPS, arena=297_320, with_model=False)
    overhead = 16_384 + build.CORE_RAM_BYTES
    board = _small("nucleo-l4r5zi", 196_864 + overhead + 1000)  # the aot arena fits, TFLite-Micro's does not
    with pytest.raises(UserError, match="with backend tflm: arena 299,488 B") as e:
        build._check_fits(manifest, board, "tflm")
    assert "RAM" in str(e.value) and "aot backend fits (--backend aot)" not in str(e.value)  # no aot sources
    with pytest.raises(UserError, match="no aot sources for the reference kernels; run `embbert convert` again"):
        build._check_fits(manifest, board, "aot")
    with pytest.raises(UserError, match="the aot code generator does not take this model \\(op X\\); build the tflm"):
        build._check_fits({**manifest, "aot_unsupported": "op X"}, board, "aot")
    manifest["aot"] = {"reference": {"arena_bytes": 196_864, "weights_bytes": 430_000, "files": []}}
    build._check_fits(manifest, board, "aot")
    with pytest.raises(UserError, match="the aot backend fits"):
        build._check_fits(manifest, board, "tflm")
    build._check_fits(manifest, _small("nucleo-l4r5zi", 299_488 + overhead), "tflm")  # exactly fits
    with pytest.raises(UserError, match="with backend aot"):
        build._check_fits(manifest, _small("nucleo-l4r5zi", 196_864 + overhead - 1), "aot")
