"""`embbert build ART_DIR --board BOARD`: the firmware for one board.

Steps: check the artifacts and the backend; generate the tokenizer tables
(and, with a model, the backend's sources: phase 2) into a folder the
PlatformIO project reads ($EMBBERT_GEN_DIR); run PlatformIO; read flash and
RAM from the linker map; refuse what does not fit the board.
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
from embbert.device.platformio_env import core_dir, pio, platform_installed
from embbert.device.tokenizer_tables import flash_bytes as tables_flash_bytes, write_tables
from embbert.errors import UserError

BACKENDS = ("none", "aot", "tflm")
DEFAULT_MAX_LEN = 256
# Static buffers of the portable core besides the model: receive, reply and
# wire buffers (~6 kB) and the tokenizer's scratch (4 B per text byte).
CORE_RAM_BYTES = 3 * 2100 + 4 * 2048 + 1024


def _manifest(art_dir: Path) -> dict | None:
    path = art_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    if manifest.get("manifest_version") != 1:
        raise UserError(f"{path}: manifest_version {manifest.get('manifest_version')!r}; this firmware reads version 1")
    return manifest


def choose_backend(requested: str | None, manifest: dict | None, board: Board) -> str:
    """none without a model; else aot (runs everywhere) unless tflm is asked."""
    if requested is not None and requested not in BACKENDS:
        raise UserError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    backend = requested or ("aot" if manifest else "none")
    if backend != "none" and manifest is None:
        raise UserError(f"backend {backend} needs a model, and ART_DIR has no manifest.json (run `embbert convert` first)")
    if backend == "tflm" and board.kind == "qemu":
        raise UserError(f"backend tflm needs TFLite-Micro's sources, which only real boards get (lib_deps); "
                        f"{board.name} uses --backend aot")
    return backend


def check_model_fits(manifest: dict, board: Board) -> None:
    """Before building: arena + stack + core buffers within RAM, model within flash."""
    ram = manifest["arena_bytes"] + board.build.stack_bytes + CORE_RAM_BYTES
    if ram > board.memory.ram_bytes:
        raise UserError(f"the model does not fit {board.name}: arena {manifest['arena_bytes']:,} B + stack "
                        f"{board.build.stack_bytes:,} B + buffers {CORE_RAM_BYTES:,} B = {ram:,} B > RAM "
                        f"{board.memory.ram_bytes:,} B")
    if manifest["flash_bytes"] > board.memory.flash_bytes:
        raise UserError(f"the model does not fit {board.name}: {manifest['flash_bytes']:,} B > flash "
                        f"{board.memory.flash_bytes:,} B")


def _generate(art_dir: Path, gen: Path, backend: str, manifest: dict | None, full_length: bool = False) -> dict:
    tokenizer = art_dir / "tokenizer.json"
    if not tokenizer.is_file():
        raise UserError(f"{art_dir} has no tokenizer.json (the converter writes it beside the model)")
    if gen.exists():
        shutil.rmtree(gen)
    tables = write_tables(tokenizer, gen)
    max_len = manifest["sequence_length"] if manifest else DEFAULT_MAX_LEN
    config = {"backend": backend, "defines": {"EMBBERT_MAX_LEN": max_len}}
    extra = {}
    if backend == "aot":
        from embbert.convert.aot.firmware import write_backend_sources

        aot = write_backend_sources(art_dir, manifest, gen, full_length=full_length)
        config["include_dirs"] = aot.pop("include_dirs")
        config["defines"]["EMBBERT_AOT_FULL_LENGTH"] = int(full_length)
        # TFLite-Micro's release configuration: DCHECKs off, no error strings, and a
        # failed CHECK halts in a loop instead of calling abort() (no libc signals here).
        # The host test build keeps the DCHECKs on; neither changes the arithmetic.
        config["defines"].update({"NDEBUG": 1, "TF_LITE_STRIP_ERROR_STRINGS": 1, "TF_LITE_MCU_DEBUG_LOG": 1})
        extra["aot"] = aot
    elif backend != "none":
        # Phase 2: the tflm model array goes here.
        raise UserError(f"backend {backend} cannot embed the model yet (issue 6, phase 2); "
                        "build with --backend aot or --backend none")
    (gen / "build.json").write_text(json.dumps(config, indent=1))
    return {"tokenizer_sha256": tables.sha256, "tokenizer_flash_bytes": tables_flash_bytes(tables), "max_len": max_len,
            **extra}


def _aot_manifest(art_dir: Path, manifest: dict) -> dict:
    """The aot backend's own memory: its planned arena, its weights (not the .tflite)."""
    from embbert.convert.aot.firmware import footprint

    model = art_dir / "model.tflite"
    if not model.is_file():
        raise UserError(f"{art_dir} has a manifest.json but no model.tflite; run `embbert convert` again")
    return {**manifest, **footprint(model)}


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
    upstream = board.build.upstream_platform
    if upstream and not platform_installed(upstream):
        offline = _registry_reachable()
        if offline:
            raise UserError(f"board {board.name} needs the PlatformIO platform {upstream!r} from the registry, which "
                            f"needs internet ({offline}); with internet, the same command installs it into {core_dir()}")


def _run_platformio(board: Board, gen: Path, pio_build: Path) -> None:
    upstream = board.build.upstream_platform
    if upstream and not platform_installed(upstream):
        proc = pio(["pkg", "install", "--global", "--platform", upstream], cwd=firmware_dir(), timeout=900)
        if proc.returncode != 0 or not platform_installed(upstream):
            why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise UserError(f"board {board.name} needs the PlatformIO platform {upstream!r} from the registry, "
                            f"which needs internet; installing it into {core_dir()} failed: {why[0]}")
    env = {"EMBBERT_GEN_DIR": str(gen), "PLATFORMIO_BUILD_DIR": str(pio_build)}
    proc = pio(["run", "-e", board.build.pio_env], cwd=firmware_dir(), extra_env=env)
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        overflow = re.search(r"region `?(\w+)'? overflowed by (\d+) bytes", log)
        if overflow:
            raise UserError(f"the firmware does not fit {board.name}: region {overflow.group(1)} overflowed by "
                            f"{int(overflow.group(2)):,} bytes")
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise RuntimeError(f"PlatformIO build of {board.name} failed:\n{tail}")


def build_firmware(art_dir, board_name: str, backend: str | None = None, out=None, full_length: bool = False) -> dict:
    """Build; returns the report (flash_bytes, ram_bytes, paths, ...). full_length (aot): pad every
    input to L and run the full graph instead of the n real tokens."""
    started = time.monotonic()
    art_dir = Path(art_dir)
    if not art_dir.is_dir():
        raise UserError(f"artifact folder not found: {art_dir}")
    board = load_board(board_name)
    manifest = _manifest(art_dir)
    backend = choose_backend(backend, manifest, board)
    if manifest is not None:
        check_model_fits(manifest, board)  # the converter's figures (TFLite-Micro's arena, the .tflite)
        if backend == "aot":
            check_model_fits(_aot_manifest(art_dir, manifest), board)  # the aot plan's own
    _check_platform(board)
    out = Path(out) if out is not None else art_dir / "build" / board.name
    gen, pio_build = out / "generated", out / "pio"
    report = _generate(art_dir, gen, backend, manifest, full_length)
    _run_platformio(board, gen, pio_build)
    built = pio_build / board.build.pio_env
    for name in ("firmware.elf", "firmware.bin", "firmware.map"):
        if (built / name).is_file():
            shutil.copy2(built / name, out / name)
    use = read_map(out / "firmware.map", board.memory.flash_regions, board.memory.ram_regions)
    if use.flash_bytes > board.memory.flash_bytes or use.ram_bytes > board.memory.ram_bytes:
        raise UserError(f"the firmware does not fit {board.name}: flash {use.flash_bytes:,} of "
                        f"{board.memory.flash_bytes:,} B, RAM {use.ram_bytes:,} of {board.memory.ram_bytes:,} B")
    report = {
        "board": board.name, "backend": backend, "flash_bytes": use.flash_bytes, "ram_bytes": use.ram_bytes,
        "board_flash_bytes": board.memory.flash_bytes, "board_ram_bytes": board.memory.ram_bytes,
        "stack_bytes": board.build.stack_bytes, "model_sha256": manifest["model_file"]["sha256"] if manifest else None,
        **report,
        "elf": str(out / "firmware.elf"), "map": str(out / "firmware.map"),
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "build.json").write_text(json.dumps(report, indent=1))
    return report
