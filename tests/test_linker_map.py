"""Flash and RAM from the linker map (embbert.device.linker_map) agree with
what the firmware reports in INFO: the spans between its linker symbols."""

import shutil
import subprocess

import pytest

from embbert.device.boards import load_board
from embbert.device.linker_map import read_map

# Non-empty .data (12 B), then a 16-aligned .bss: ld leaves a 4 B gap between them.
PROGRAM = r"""
int counter = 7;
char tag[8] = "embbert";
__attribute__((aligned(16))) unsigned char arena[1000];
void Reset_Handler(void) {
  for (;;) arena[counter++ % 1000] = (unsigned char)tag[counter % 8];
}
__attribute__((section(".isr_vector"), used)) void (*const vectors[2])(void) = {0, Reset_Handler};
"""


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_ram_and_flash_are_the_spans_info_reports_with_data_and_an_aligned_bss(tmp_path):
    board = load_board("qemu-m4")
    (tmp_path / "p.c").write_text(PROGRAM)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O1", "-nostartfiles", "-nostdlib",
                    "-T", str(board.path(board.build.linker_script)), "-Wl,--defsym=__stack_size__=1024",
                    *(f"-L{board.path(folder)}" for folder in board.build.sources),  # INCLUDEd scripts
                    f"-Wl,-Map={tmp_path / 'p.map'}", str(tmp_path / "p.c"), "-o", str(tmp_path / "p.elf")],
                   check=True, capture_output=True)
    nm = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "p.elf")], capture_output=True, text=True,
                        check=True).stdout
    sym = {parts[2]: int(parts[0], 16) for parts in (line.split() for line in nm.splitlines()) if len(parts) == 3}
    assert sym["__bss_start__"] > sym["__data_end__"]  # the gap this test is about
    use = read_map(tmp_path / "p.map", board.memory.flash_regions, board.memory.ram_regions)
    # what baremetal_main.cc's port_memory() reports in INFO
    assert use.ram_bytes == sym["__ram_end__"] - sym["__ram_start__"]
    assert use.flash_bytes == sym["__flash_end__"] - sym["__flash_start__"]
    sizes = {s.name: s.size for s in use.sections}
    assert use.ram_bytes > sizes[".data"] + sizes[".bss"] + sizes[".stack"]  # a plain sum misses the gap
