"""Flash and RAM used, read from a GNU ld map file (-Wl,-Map).

A section counts toward RAM if its run address lies in one of the board's
RAM regions, and toward flash if its load address lies in a flash region
and it has contents: .data counts in both, .bss and the stack in RAM only.
The map does not say which sections are contents-free (ld even prints a
"load address" for .bss), so those are known by name: anything with bss,
noinit, stack or heap in its name (.bss, .dram0.bss, ._user_heap_stack).
The regions come from the map's own "Memory Configuration" and the board
description.

Each region counts as a span, from its first section to the end of its last:
alignment gaps between sections are memory used too (a 16-aligned .bss after
a .data of 4-byte multiples leaves one), and the firmware's INFO reports the
same span from its linker symbols (__ram_end__ - __ram_start__). Tests check
the result against arm-none-eabi-size and against those symbols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from embbert.errors import UserError

# Sections never loaded on the target; their addresses (often 0) mean nothing.
_NON_ALLOC = (".debug", ".comment", ".ARM.attributes", ".stab", ".gnu.attributes", ".xtensa.info", ".xt.",
              ".riscv.attributes", ".gnu.build.attributes")
_NO_CONTENTS = ("bss", "noinit", "stack", "heap")
_REGION = re.compile(r"^(\S+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)")
_SECTION = re.compile(r"^(\.?[\w.$-]+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+load address 0x([0-9a-fA-F]+))?\s*$")


@dataclass(frozen=True)
class Section:
    name: str
    address: int
    size: int
    load_address: int


@dataclass(frozen=True)
class MemoryUse:
    flash_bytes: int
    ram_bytes: int
    sections: tuple[Section, ...]


def _regions(lines: list[str]) -> dict[str, tuple[int, int]]:
    regions, inside = {}, False
    for line in lines:
        if line.startswith("Memory Configuration"):
            inside = True
        elif line.startswith("Linker script and memory map"):
            break
        elif inside and (m := _REGION.match(line)) and m.group(1) not in ("Name", "*default*"):
            regions[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16))
    return regions


def _sections(lines: list[str]) -> list[Section]:
    """Output sections: a name at column 0, its address and size on the same
    line or, for a long name, on the next one."""
    out, pending = [], None
    start = next((i for i, l in enumerate(lines) if l.startswith("Linker script and memory map")), len(lines))
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            m = _SECTION.match(line)
            if m and m.group(1):
                out.append(Section(m.group(1), int(m.group(2), 16), int(m.group(3), 16),
                                   int(m.group(4) or m.group(2), 16)))
                pending = None
            else:
                pending = line.split()[0] if line.split() and line.split()[0].startswith(".") else None
        elif pending is not None:
            m = _SECTION.match(line)
            if m and not m.group(1):
                out.append(Section(pending, int(m.group(2), 16), int(m.group(3), 16), int(m.group(4) or m.group(2), 16)))
            pending = None
    return [s for s in out if not s.name.startswith(_NON_ALLOC)]


def read_map(path, flash_regions: list[str], ram_regions: list[str]) -> MemoryUse:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"linker map not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    regions = _regions(lines)
    missing = [r for r in (*flash_regions, *ram_regions) if r not in regions]
    if missing:
        raise UserError(f"{path}: memory regions {missing} not in the map (it has {sorted(regions)})")

    def span(extents: list[tuple[int, int]], names: list[str]) -> int:
        """Bytes from the first to the end of the last extent (start, size), region by region."""
        total = 0
        for name in names:
            origin, length = regions[name]
            inside = [(a, a + n) for a, n in extents if origin <= a < origin + length]
            total += max(end for _, end in inside) - min(a for a, _ in inside) if inside else 0
        return total

    sections = tuple(s for s in _sections(lines) if s.size > 0)
    flash = span([(s.load_address, s.size) for s in sections if not any(w in s.name for w in _NO_CONTENTS)],
                 flash_regions)
    ram = span([(s.address, s.size) for s in sections], ram_regions)
    return MemoryUse(flash, ram, sections)
