"""Per-op instruction profile of the aot model on an emulated board.

The artifact's model_aot.cc (ART_DIR/aot/<kernels>/, checked against
manifest.json), with EMBBERT_AOT_TRACE reading the board's counter after
every op (firmware/test/aot_profile_main.cc), is built as a bare-metal
program (embbert.device.baremetal) and run once per length n on the first n
of `ids`. Used by bench/device_latency.py; the figures are per op index of
the graph, with the op's kind and multiply-accumulates.
"""

from __future__ import annotations

import re
from pathlib import Path

from embbert.device.baremetal import TEST_DIR, build_program, run_program
from embbert.device.boards import load_board
from embbert.errors import UserError

from ..manifest import check_file, read_manifest
from . import headers
from .artifact import AOT_SRC, checked_folder, kernel_dirs
from .codegen import fuse, op_macs
from .graph import read_graph

# TFLite-Micro's release configuration, as on the firmware (embbert.device.build)
RELEASE_DEFINES = {"NDEBUG": 1, "TF_LITE_STRIP_ERROR_STRINGS": 1, "TF_LITE_MCU_DEBUG_LOG": 1}


def _input_header(lengths: list[int], ids: list[int], max_len: int) -> str:
    padded = list(ids[:max_len]) + [0] * (max_len - len(ids))
    return ("#pragma once\n#include <stdint.h>\n"
            f"constexpr int kNumLengths = {len(lengths)};\n"
            f"constexpr int kLengths[] = {{{', '.join(map(str, lengths))}}};\n"
            f"const int32_t kIds[{max_len}] = {{{', '.join(map(str, padded))}}};\n")


def profile(art_dir: Path, board: str, lengths: list[int], ids: list[int], work: Path,
            kernels: str | None = None) -> dict:
    """{n: {"instructions": total, "logits": [...], "ops": [{"op", "kind", "instructions", "macs"}]}}"""
    manifest = read_manifest(art_dir)
    kernels = kernels or load_board(board).build.aot_kernels
    src = checked_folder(art_dir, manifest, kernels)
    check_file(art_dir, manifest["model_file"])
    g = read_graph((Path(art_dir) / manifest["model_file"]["path"]).read_bytes())
    fuse(g, kernels)  # op kinds and MACs by op index, the generated code's
    ops = {op.index: op for op in g.ops}
    traced = {int(k) for k in re.findall(r"EMBBERT_AOT_TRACE\((\d+),", (src / "model_aot.cc").read_text())}
    if traced - set(ops):  # sources of an older generator (one that kept a TRANSPOSE this one folds, ...)
        raise UserError(f"{art_dir}: its aot/{kernels} sources have op {min(traced - set(ops))}, which this "
                        "generator does not emit; run `embbert convert` again")
    work.mkdir(parents=True, exist_ok=True)
    (work / "aot_profile_input.h").write_text(_input_header(lengths, ids, g.L))
    elf = build_program(board, [src / "model_aot.cc", AOT_SRC / "aot_common.cc", TEST_DIR / "aot_profile_main.cc"],
                        work / "aot_profile.elf", include_dirs=headers.include_dirs(), defines=RELEASE_DEFINES,
                        extra_flags=["-include", str(TEST_DIR / "aot_profile_hook.h"), f"-I{src}", f"-I{work}",
                                     f"-I{AOT_SRC}", *[f"-I{d}" for d in kernel_dirs(kernels)]])
    counter = load_board(board).counter
    text = run_program(board, elf)
    result, current = {}, None
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["n"]:
            n = int(parts[1])
            current = result[n] = {"instructions": int(parts[3]) * counter.num // counter.den,
                                   "logits": [int(v) for v in parts[5:]], "ops": []}
        elif parts[:1] == ["op"] and current is not None:
            k = int(parts[1])
            current["ops"].append({"op": k, "kind": ops[k].kind, "instructions": int(parts[2]) * counter.num // counter.den,
                                   "macs": op_macs(g, ops[k], n)})
    return result
