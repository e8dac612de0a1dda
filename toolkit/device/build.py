"""`embbert build ART_DIR --board BOARD`: the firmware for one board.

Steps: check the artifacts and the backend; write the tokenizer tables and,
with a model, copy the backend's sources from the artifact (checked against
manifest.json) into a folder the PlatformIO project reads ($EMBBERT_GEN_DIR);
run PlatformIO; read flash and RAM from the linker map; refuse what does not
fit the board. No model code is generated here: `embbert convert` did that.

Backends (firmware/README.md): `aot` (C++ that `embbert convert` generated
from the int8 model, over TFLite-Micro's reference-kernel headers or our
kernels; runs everywhere, the QEMU boards included) and `tflm` (TFLite-Micro's
MicroInterpreter, whose sources only the real boards get, through lib_deps).
The default is tflm where the board has TFLite-Micro (board.toml
`[platformio.tflm]`), else aot; none without a model.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

from embbert.device.boards import Board, load_board
from embbert.device.linker_map import read_map
from embbert.device.paths import firmware_dir
from embbert.device.platformio_ini import write_boards_ini
from embbert.device.platformio_env import BUILD_TIMEOUT_S, core_dir, pio, platform_installed
from embbert.device.tokenizer_tables import flash_bytes as tables_flash_bytes, write_tables
from embbert.errors import UserError
from embbert.writable import check_writable

BACKENDS = ("none", "aot", "tflm")
DEFAULT_MAX_LEN = 256
# Static buffers of the portable core besides the model: receive, reply and
# wire buffers (~6 kB) and the tokenizer's scratch (4 B per text byte).
CORE_RAM_BYTES = 3 * 2100 + 4 * 2048 + 1024


def _manifest(art_dir: Path) -> dict | None:
    """The artifact's manifest, complete and naming the model and tokenizer the
    folder holds (sha256), or None for a folder with only a tokenizer (backend none)."""
    from embbert.convert.manifest import read_manifest, verify_files

    if not (art_dir / "manifest.json").is_file():
        return None
    manifest = read_manifest(art_dir)
    verify_files(art_dir, manifest)
    return manifest


BACKEND_HELP = ("none (no model), aot or tflm. Default: none without a model; tflm on boards that get "
                "TFLite-Micro through PlatformIO lib_deps (nucleo-*, esp32-*); aot elsewhere (qemu-*), where "
                "TFLite-Micro's sources are not available.")


def default_backend(manifest: dict | None, board: Board) -> str:
    if manifest is None:
        return "none"
    return "tflm" if board.has_tflm else "aot"


def choose_backend(requested: str | None, manifest: dict | None, board: Board) -> str:
    """none without a model; else tflm where the board gets TFLite-Micro, aot elsewhere (BACKEND_HELP)."""
    if requested is not None and requested not in BACKENDS:
        raise UserError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    backend = requested or default_backend(manifest, board)
    if backend != "none" and manifest is None:
        raise UserError(f"backend {backend} needs a model, and ART_DIR has no manifest.json (run `embbert convert` first)")
    if backend == "tflm" and not board.has_tflm:
        raise UserError(f"backend tflm needs TFLite-Micro's sources, which only real boards get (lib_deps); "
                        f"{board.name} uses --backend aot")
    return backend


# Headroom of the tflm arena over the manifest's arena_bytes (the host TFLite-Micro's smallest,
# 64-bit). Measured with EmbBERT (sms_spam, L 256) linked against TFLite-Micro's sources on
# qemu-m4 (issue 14): the manifest's 170,608 B sufficed; the device used 163,572 B with the
# reference kernels and 164,292 B with CMSIS-NN, whose kernels add 720 B of scratch. The
# optimized kernels' scratch is what the host figure does not contain, so the headroom is three
# times the largest scratch measured: room for kernel libraries not measured (ESP-NN, newer
# CMSIS-NN) without relying on the 32-bit pointers' saving (6,316 B here).
OPTIMIZED_KERNEL_SCRATCH_BYTES = 720  # CMSIS-NN, measured
TFLM_ARENA_HEADROOM_BYTES = 3 * OPTIMIZED_KERNEL_SCRATCH_BYTES  # 2,160 B


def tflm_arena_bytes(manifest: dict) -> int:
    """The tflm backend's static arena: the manifest's arena_bytes plus the headroom above,
    rounded up to 16 (the arena is 16-aligned)."""
    return -(-(int(manifest["arena_bytes"]) + TFLM_ARENA_HEADROOM_BYTES) // 16) * 16


def check_model_fits(manifest: dict, board: Board, backend: str = "tflm") -> None:
    """Before building: arena + stack + core buffers within RAM, model within flash.
    `manifest` carries the backend's own figures: for tflm TFLite-Micro's arena and the
    .tflite's size, for aot its plan's arena and weights (_aot_manifest).
    A refusal is one line: the arena, the RAM, the shortfall, the largest arena that fits."""
    arena = tflm_arena_bytes(manifest) if backend == "tflm" else int(manifest["arena_bytes"])
    ram, stack = board.memory.ram_bytes, board.build.stack_bytes
    room = ram - stack - CORE_RAM_BYTES  # what the arena may take
    what = f"the model does not fit {board.name} with backend {backend}"
    if arena > room:
        raise UserError(f"{what}: arena {arena:,} B + stack {stack:,} B + buffers {CORE_RAM_BYTES:,} B = "
                        f"{arena + stack + CORE_RAM_BYTES:,} B > RAM {ram:,} B, {arena - room:,} B short; "
                        f"an arena of at most {room:,} B would fit")
    if manifest["flash_bytes"] > board.memory.flash_bytes:
        raise UserError(f"{what}: {manifest['flash_bytes']:,} B > flash {board.memory.flash_bytes:,} B")


def _check_fits(manifest: dict, board: Board, backend: str, kernels: str = "reference") -> None:
    if backend == "aot":
        check_model_fits(_aot_manifest(manifest, kernels), board, "aot")  # the aot plan's own arena and weights
        return
    try:
        check_model_fits(manifest, board, "tflm")  # the converter's TFLite-Micro arena and the .tflite
    except UserError as error:
        hint = ""
        try:
            check_model_fits(_aot_manifest(manifest, kernels), board, "aot")
            hint = "; the aot backend fits (--backend aot)"
        except UserError:  # too big too, or no aot sources
            pass
        raise UserError(f"{error}{hint}") from None


# TFLite-Micro's release configuration: DCHECKs off, no error strings (no text on the serial
# line), and a failed TFLITE_CHECK halts in a loop instead of calling newlib's abort(), which
# pulls in _exit, _kill, _getpid and _sbrk (undefined on bare metal, a heap on Arduino cores).
TFLM_RELEASE_DEFINES = {"NDEBUG": 1, "TF_LITE_STRIP_ERROR_STRINGS": 1, "TF_LITE_MCU_DEBUG_LOG": 1}


def generate_sources(art_dir: Path, gen: Path, backend: str, manifest: dict | None, full_length: bool = False,
              kernels: str = "reference") -> dict:
    """The generated folder: the tokenizer tables, the backend's sources from the artifact, build.json."""
    from embbert.convert.aot import artifact

    tokenizer = art_dir / "tokenizer.json"
    if not tokenizer.is_file():
        raise UserError(f"{art_dir} has no tokenizer.json (the converter writes it beside the model)")
    if backend == "aot":
        artifact.checked_folder(art_dir, manifest, kernels)  # before anything is written
    if gen.exists():
        shutil.rmtree(gen)
    tables = write_tables(tokenizer, gen)
    max_len = manifest["sequence_length"] if manifest else DEFAULT_MAX_LEN
    config = {"backend": backend, "defines": {"EMBBERT_MAX_LEN": max_len}}
    extra = {}
    if backend == "aot":
        aot = artifact.copy_sources(art_dir, manifest, gen, full_length=full_length, kernels=kernels)
        config["include_dirs"] = aot.pop("include_dirs")
        config["defines"]["EMBBERT_AOT_FULL_LENGTH"] = int(full_length)
        # The host test build keeps the DCHECKs on; neither changes the arithmetic.
        config["defines"].update(TFLM_RELEASE_DEFINES)
        extra["aot"] = aot
    elif backend == "tflm":
        extra["tflm"] = write_tflm_sources(art_dir, manifest, gen)
        # for its library too (the defines reach every library PlatformIO builds); the runner
        # reads TfLiteTensor, whose layout TF_LITE_STATIC_MEMORY changes: both sides must agree
        config["defines"].update({**TFLM_RELEASE_DEFINES, "TF_LITE_STATIC_MEMORY": 1})
    (gen / "build.json").write_text(json.dumps(config, indent=1))
    return {"tokenizer_sha256": tables.sha256, "tokenizer_flash_bytes": tables_flash_bytes(tables), "max_len": max_len,
            **extra}


# TFLite builtin op (manifest.json `ops`, schema enum names) -> the
# MicroMutableOpResolver method that registers it (Add<name>). Checked against
# TFLite-Micro's headers by tests/test_tflm_backend.py.
TFLM_ADD_METHODS = {
    "ABS": "Abs", "ADD": "Add", "ADD_N": "AddN", "ARG_MAX": "ArgMax", "ARG_MIN": "ArgMin",
    "ASSIGN_VARIABLE": "AssignVariable", "AVERAGE_POOL_2D": "AveragePool2D", "BATCH_MATMUL": "BatchMatMul",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNd", "BROADCAST_ARGS": "BroadcastArgs", "BROADCAST_TO": "BroadcastTo",
    "CALL_ONCE": "CallOnce", "CAST": "Cast", "CEIL": "Ceil", "CONCATENATION": "Concatenation", "CONV_2D": "Conv2D",
    "COS": "Cos", "CUMSUM": "CumSum", "DEPTH_TO_SPACE": "DepthToSpace", "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
    "DEQUANTIZE": "Dequantize", "DIV": "Div", "ELU": "Elu", "EQUAL": "Equal", "EXP": "Exp",
    "EXPAND_DIMS": "ExpandDims", "FILL": "Fill", "FLOOR": "Floor", "FLOOR_DIV": "FloorDiv", "FLOOR_MOD": "FloorMod",
    "FULLY_CONNECTED": "FullyConnected", "GATHER": "Gather", "GATHER_ND": "GatherNd", "GREATER": "Greater",
    "GREATER_EQUAL": "GreaterEqual", "HARD_SWISH": "HardSwish", "IF": "If", "L2_NORMALIZATION": "L2Normalization",
    "L2_POOL_2D": "L2Pool2D", "LEAKY_RELU": "LeakyRelu", "LESS": "Less", "LESS_EQUAL": "LessEqual", "LOG": "Log",
    "LOGICAL_AND": "LogicalAnd", "LOGICAL_NOT": "LogicalNot", "LOGICAL_OR": "LogicalOr", "LOGISTIC": "Logistic",
    "LOG_SOFTMAX": "LogSoftmax", "MAXIMUM": "Maximum", "MAX_POOL_2D": "MaxPool2D", "MEAN": "Mean",
    "MINIMUM": "Minimum", "MIRROR_PAD": "MirrorPad", "MUL": "Mul", "NEG": "Neg", "NOT_EQUAL": "NotEqual",
    "PACK": "Pack", "PAD": "Pad", "PADV2": "PadV2", "PRELU": "Prelu", "QUANTIZE": "Quantize",
    "READ_VARIABLE": "ReadVariable", "REDUCE_MAX": "ReduceMax", "RELU": "Relu", "RELU6": "Relu6",
    "RESHAPE": "Reshape", "RESIZE_BILINEAR": "ResizeBilinear", "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighbor",
    "ROUND": "Round", "RSQRT": "Rsqrt", "SELECT_V2": "SelectV2", "SHAPE": "Shape", "SIN": "Sin", "SLICE": "Slice",
    "SOFTMAX": "Softmax", "SPACE_TO_BATCH_ND": "SpaceToBatchNd", "SPACE_TO_DEPTH": "SpaceToDepth",
    "SPLIT": "Split", "SPLIT_V": "SplitV", "SQRT": "Sqrt", "SQUARE": "Square",
    "SQUARED_DIFFERENCE": "SquaredDifference", "SQUEEZE": "Squeeze", "STRIDED_SLICE": "StridedSlice",
    "SUB": "Sub", "SUM": "Sum", "SVDF": "Svdf", "TANH": "Tanh", "TRANSPOSE": "Transpose",
    "TRANSPOSE_CONV": "TransposeConv", "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM",
    "UNPACK": "Unpack", "VAR_HANDLE": "VarHandle", "WHILE": "While", "ZEROS_LIKE": "ZerosLike",
}


def _c_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)  # ASCII-escaped JSON is a valid C string literal


def tflm_ops_header(ops: list[str]) -> str:
    """tflm_ops.h: RegisterOps(resolver) adds exactly `ops`. Each Add call is
    detected at compile time, so a TFLite-Micro release that lacks one builds,
    and the device names the op (RegisterOps returns it) instead of running."""
    unknown = [op for op in ops if op not in TFLM_ADD_METHODS]
    if unknown:
        raise UserError(f"manifest.json lists op(s) TFLite-Micro's MicroMutableOpResolver cannot register: "
                        f"{', '.join(unknown)}")
    lines = ["// Generated by `embbert build --backend tflm` from manifest.json's ops. Do not edit.",
             "#pragma once", "", "namespace tflm_model {", "",
             f"constexpr unsigned kNumOps = {len(ops)};  // the resolver holds exactly these", "",
             "namespace detail {",
             "// add_OP(r, 0): r.Add<Op>() where this TFLite-Micro has it, else false."]
    for op in ops:
        m = TFLM_ADD_METHODS[op]
        lines += [f"template <class R> auto add_{op}(R& r, int) -> decltype(r.Add{m}(), bool()) "
                  f"{{ return r.Add{m}() == kTfLiteOk; }}",
                  f"template <class R> bool add_{op}(R&, long) {{ return false; }}"]
    lines += ["}  // namespace detail", "",
              "// Registers the model's ops; nullptr, or the first op it could not register.",
              "template <class R>", "const char* RegisterOps(R& r) {"]
    lines += [f"  if (!detail::add_{op}(r, 0)) return {_c_string(op)};" for op in ops]
    lines += ["  return nullptr;", "}", "", "}  // namespace tflm_model", ""]
    return "\n".join(lines)


def check_tflm_artifacts(art_dir: Path, manifest: dict) -> None:
    """What the tflm backend needs from ART_DIR, checked before anything is written:
    model_data.{h,cc} of the model the manifest names, ops the resolver can register."""
    sha = manifest["model_file"]["sha256"]
    for name in ("model_data.h", "model_data.cc"):
        if not (art_dir / name).is_file():
            raise UserError(f"{art_dir} has no {name} (the converter writes it beside model.tflite); "
                            "run `embbert convert` again")
    source = (art_dir / "model_data.cc").read_text()
    stamp = re.search(r"sha256 ([0-9a-f]{64})", source)
    if not stamp or stamp.group(1) != sha:
        raise UserError(f"{art_dir}/model_data.cc is not the model manifest.json names (sha256 "
                        f"{stamp.group(1)[:12] if stamp else '?'}... vs {sha[:12]}...); run `embbert convert` again")
    tflm_ops_header(sorted(manifest["ops"]))  # refuses an op without a resolver method
    labels, out_shape = manifest["labels"], manifest.get("output", {}).get("shape")
    if out_shape and out_shape[-1] != len(labels):
        raise UserError(f"manifest.json has {len(labels)} labels but an output of shape {out_shape}")


def write_tflm_sources(art_dir: Path, manifest: dict, gen: Path) -> dict:
    """The tflm backend's generated sources: the converter's model_data.{h,cc}
    (the .tflite as a 16-aligned const array), tflm_model_info.h (sha, labels,
    L, pad id, arena) and tflm_ops.h (the resolver's registrations)."""
    check_tflm_artifacts(art_dir, manifest)
    sha = manifest["model_file"]["sha256"]
    shutil.copy2(art_dir / "model_data.h", gen / "model_data.h")
    shutil.copy2(art_dir / "model_data.cc", gen / "model_data.cc")
    ops = sorted(manifest["ops"])
    (gen / "tflm_ops.h").write_text(tflm_ops_header(ops))
    labels = manifest["labels"]
    arena = tflm_arena_bytes(manifest)
    (gen / "tflm_model_info.h").write_text(
        "// Generated by `embbert build --backend tflm` from manifest.json. Do not edit.\n#pragma once\n"
        "#include <stdint.h>\n\nnamespace tflm_model {\n"
        f"constexpr const char* kModelSha256 = {_c_string(sha)};\n"
        f"constexpr uint16_t kNumLabels = {len(labels)};\n"
        f"constexpr const char* kLabelsData[] = {{{', '.join(_c_string(x) for x in labels)}}};\n"
        "constexpr const char* const* kLabels = kLabelsData;\n"
        f"constexpr uint16_t kMaxLen = {int(manifest['sequence_length'])};  // the graph's fixed length L\n"
        f"constexpr int32_t kPadId = {int(manifest['pad_id'])};\n"
        f"constexpr uint32_t kManifestArenaBytes = {int(manifest['arena_bytes'])};  // host TFLite-Micro's smallest\n"
        f"constexpr uint32_t kArenaBytes = {arena};  // + {TFLM_ARENA_HEADROOM_BYTES} B headroom, rounded up to 16\n"
        "}  // namespace tflm_model\n")
    return {"arena_bytes": arena, "ops": ops, "model_flash_bytes": int(manifest["flash_bytes"])}


def _aot_manifest(manifest: dict, kernels: str = "reference") -> dict:
    """The aot backend's own memory, from the manifest: its planned arena, its weights (not the .tflite)."""
    from embbert.convert.aot.artifact import entry

    aot = entry(manifest, kernels)
    return {**manifest, "arena_bytes": aot["arena_bytes"], "flash_bytes": aot["weights_bytes"]}


REGISTRY = ("api.registry.platformio.org", 443)


def _registry_reachable() -> str | None:
    """None if PlatformIO's registry answers, else why not (fails in < 5 s,
    where PlatformIO's own retries take a minute)."""
    try:
        socket.create_connection(REGISTRY, timeout=5).close()
        return None
    except OSError as error:
        return f"{REGISTRY[0]}: {error}"


def _check_platform(board: Board) -> None:
    upstream = board.upstream_platform
    if upstream and not platform_installed(upstream):
        offline = _registry_reachable()
        if offline:
            raise UserError(f"board {board.name} needs the PlatformIO platform {upstream!r} from the registry, which "
                            f"needs internet ({offline}); with internet, the same command installs it into {core_dir()}")


def pio_run(board: Board, backend: str, out: Path, targets: tuple[str, ...] = (), port: str | None = None,
            timeout: float = BUILD_TIMEOUT_S):
    """`platformio run` in the environment of (board, backend) (Board.pio_env: tflm builds add
    TFLite-Micro), on the build folder OUT (OUT/generated, OUT/pio): the build, and the upload
    of exactly that build. boards.ini is written from the boards' board.toml first."""
    write_boards_ini()
    out = Path(out).resolve()
    args = ["run", "-e", board.pio_env(backend), *[x for t in targets for x in ("-t", t)]]
    if port:
        args += ["--upload-port", port]
    env = {"EMBBERT_GEN_DIR": str(out / "generated"), "PLATFORMIO_BUILD_DIR": str(out / "pio")}
    return pio(args, cwd=firmware_dir(), extra_env=env, timeout=timeout)


def _run_platformio(board: Board, backend: str, out: Path) -> None:
    upstream = board.upstream_platform
    if upstream and not platform_installed(upstream):
        proc = pio(["pkg", "install", "--global", "--platform", upstream], cwd=firmware_dir(), timeout=900)
        if proc.returncode != 0 or not platform_installed(upstream):
            why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise UserError(f"board {board.name} needs the PlatformIO platform {upstream!r} from the registry, "
                            f"which needs internet; installing it into {core_dir()} failed: {why[0]}")
    proc = pio_run(board, backend, out)
    if proc.returncode != 0:
        raise_build_failure(proc.stdout + proc.stderr, "the firmware", f"PlatformIO build of {board.name}", board)


def raise_build_failure(log: str, what: str, step: str, board: Board) -> None:
    """A failed build: a linker overflow is one line for the user; anything else, the log's tail."""
    overflow = re.search(r"region `?(\w+)'? overflowed by (\d+) bytes", log)
    if overflow:
        raise UserError(f"{what} does not fit {board.name}: region {overflow.group(1)} overflowed by "
                        f"{int(overflow.group(2)):,} bytes")
    tail = "\n".join(log.strip().splitlines()[-25:])
    raise RuntimeError(f"{step} failed:\n{tail}")


def build_firmware(art_dir, board_name: str, backend: str | None = None, out=None, full_length: bool = False,
                   aot_kernels: str | None = None) -> dict:
    """Build; returns the report (flash_bytes, ram_bytes, paths, ...). full_length (aot): pad every
    input to L and run the full graph instead of the n real tokens. aot_kernels: "reference" or
    "optimized" instead of the board's (board.toml build.aot_kernels), to compare the two."""
    started = time.monotonic()
    art_dir = Path(art_dir)
    if not art_dir.is_dir():
        raise UserError(f"artifact folder not found: {art_dir}")
    board = load_board(board_name)
    manifest = _manifest(art_dir)
    backend = choose_backend(backend, manifest, board)
    kernels = aot_kernels or board.build.aot_kernels
    if manifest is not None:
        _check_fits(manifest, board, backend, kernels)  # the chosen backend's own arena and flash
        if backend == "tflm":
            check_tflm_artifacts(art_dir, manifest)
    _check_platform(board)
    out = Path(out) if out is not None else art_dir / "build" / board.name
    check_writable(out)
    gen, pio_build = out / "generated", out / "pio"
    report = generate_sources(art_dir, gen, backend, manifest, full_length, kernels)
    env_name = board.pio_env(backend)
    _run_platformio(board, backend, out)
    built = pio_build / env_name
    for name in ("firmware.elf", "firmware.bin", "firmware.map"):
        if (built / name).is_file():
            shutil.copy2(built / name, out / name)
    use = read_map(out / "firmware.map", board.memory.flash_regions, board.memory.ram_regions)
    if use.flash_bytes > board.memory.flash_bytes or use.ram_bytes > board.memory.ram_bytes:
        raise UserError(f"the firmware does not fit {board.name}: flash {use.flash_bytes:,} of "
                        f"{board.memory.flash_bytes:,} B, RAM {use.ram_bytes:,} of {board.memory.ram_bytes:,} B")
    report = {
        "board": board.name, "backend": backend, "pio_env": env_name,
        "flash_bytes": use.flash_bytes, "ram_bytes": use.ram_bytes,
        "board_flash_bytes": board.memory.flash_bytes, "board_ram_bytes": board.memory.ram_bytes,
        "stack_bytes": board.build.stack_bytes, "model_sha256": manifest["model_file"]["sha256"] if manifest else None,
        **report,
        "elf": str(out / "firmware.elf"), "map": str(out / "firmware.map"),
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "build.json").write_text(json.dumps(report, indent=1, allow_nan=False))
    return report
