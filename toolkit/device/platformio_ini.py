"""firmware/boards.ini: every board's PlatformIO environments, generated from
its board.toml, so that a board lives in one folder (boards/<name>/).

firmware/platformio.ini holds what boards share (the sections they extend)
and reads boards.ini through `extra_configs`. For each board:

    [env:NAME]          its [platformio] options, + custom_embbert_board = NAME
    [env:NAME-tflm]     extends env:NAME and its [platformio.tflm] options
                        (TFLite-Micro in lib_deps), if the board has that table

`embbert build` and `embbert deploy` write it before running PlatformIO; to
run `pio` by hand in firmware/, write it first:

    python -m embbert.device.platformio_ini
"""

from __future__ import annotations

import os
from pathlib import Path

from embbert.device.boards import Board, board_names, load_board
from embbert.device.paths import BOARDS_DIR, FIRMWARE_DIR

GENERATED = "boards.ini"  # beside platformio.ini, named by its extra_configs


def _option(key: str, value) -> str:
    if isinstance(value, list):
        return f"{key} =" + "".join(f"\n    {item}" for item in value)
    return f"{key} = {value}"


def _section(name: str, options: dict) -> list[str]:
    return [f"[env:{name}]", *(_option(key, value) for key, value in options.items()), ""]


def environments(board: Board) -> str:
    """The board's environments, as ini text (env names from Board.pio_env)."""
    plain = {k: v for k, v in board.platformio.items() if k != "tflm"}
    lines = _section(board.pio_env("aot"), {**plain, "custom_embbert_board": board.name})
    if board.has_tflm:
        tflm = dict(board.platformio["tflm"])
        extends = ", ".join([f"env:{board.pio_env('aot')}", *filter(None, [tflm.pop("extends", None)])])
        lines += _section(board.pio_env("tflm"), {"extends": extends, **tflm})
    return "\n".join(lines)


def boards_ini(boards_dir: Path = BOARDS_DIR) -> str:
    head = ["; Generated from ../boards/*/board.toml by embbert.device.platformio_ini. Do not edit:",
            "; edit the board's board.toml ([platformio], [platformio.tflm]).", "", ""]
    return "\n".join(head) + "\n".join(environments(load_board(n, boards_dir)) for n in board_names(boards_dir))


def write_boards_ini(firmware: Path = FIRMWARE_DIR) -> Path:
    """Write firmware/boards.ini from the boards/ beside it (atomically: builds may run side by
    side); returns its path."""
    path = firmware / GENERATED
    text = boards_ini(firmware.parent / "boards")
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{GENERATED}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def project_config(firmware: Path = FIRMWARE_DIR):
    """PlatformIO's view of the project (boards.ini written first), as `pio` in firmware/ sees it."""
    from platformio import fs
    from platformio.project.config import ProjectConfig

    write_boards_ini(firmware)
    with fs.cd(str(firmware)):  # extra_configs is relative to the project folder
        return ProjectConfig(str(firmware / "platformio.ini"))


if __name__ == "__main__":
    print(write_boards_ini())
