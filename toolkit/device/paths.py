"""Where the firmware project and the board ports live: in the repository,
beside the package (the toolkit runs from a clone)."""

from pathlib import Path

from embbert.errors import UserError

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"


def firmware_dir() -> Path:
    if not (FIRMWARE_DIR / "platformio.ini").is_file():
        raise UserError(f"firmware project not found at {FIRMWARE_DIR}; run the toolkit from a clone of the repository")
    return FIRMWARE_DIR
