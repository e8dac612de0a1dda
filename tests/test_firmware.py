"""The firmware: built offline through PlatformIO for the QEMU boards, booted
in QEMU, and driven over the framed serial protocol. QEMU always runs on a
free port and is always stopped (QemuDevice's teardown)."""

import json
import os
import random
import re
import struct
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import run_cli

from embbert.data import TASKS, load_task
from embbert.device.boards import board_names, load_board
from embbert.device.paths import BOARDS_DIR, FIRMWARE_DIR
from embbert.device.protocol import Command, DeviceError, Status, cobs_encode, encode_frame, pack_frame
from embbert.device.qemu import QemuDevice
from embbert.tokenizer import default_tokenizer, encode


@pytest.fixture(scope="module")
def art_dir(tmp_path_factory):
    _, path = default_tokenizer()
    art = tmp_path_factory.mktemp("art")
    (art / "tokenizer.json").write_bytes(path.read_bytes())
    return art


@pytest.fixture(scope="module")
def built(art_dir):
    """embbert build ART_DIR --board qemu-m4 --json, timed."""
    start = time.monotonic()
    proc = run_cli("build", art_dir, "--board", "qemu-m4", "--json", check=True)
    report = json.loads(proc.stdout)
    report["wall_seconds"] = time.monotonic() - start
    return report


@pytest.fixture(scope="module")
def device(built):
    with QemuDevice(built["elf"], "qemu-m4") as dev:
        yield dev


def test_build_reports_flash_and_ram_from_the_map(built):
    assert built["board"] == "qemu-m4" and built["backend"] == "none"
    assert built["wall_seconds"] < 120
    sizes = subprocess.run(["arm-none-eabi-size", "-A", built["elf"]], capture_output=True, text=True, check=True).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", sizes, re.M)}
    assert built["flash_bytes"] == sections[".isr_vector"] + sections[".text"] + sections.get(".data", 0)
    assert built["ram_bytes"] == sections.get(".data", 0) + sections[".bss"] + sections[".stack"]
    assert built["tokenizer_flash_bytes"] < built["flash_bytes"] < 120_000
    assert built["ram_bytes"] < 64_000


def test_boot_info(device, built):
    info = device.info()
    assert info["protocol"] == 1 and info["board"] == "qemu-m4" and info["backend"] == "none"
    assert info["tokenizer_sha256"] == built["tokenizer_sha256"]
    assert info["model_sha256"] is None and info["labels"] == [] and info["arena_bytes"] == 0
    assert (info["flash_bytes"], info["ram_bytes"]) == (built["flash_bytes"], built["ram_bytes"])
    assert info["counter"] == "instructions" and info["max_len"] == 256


def test_ping_echoes_binary(device):
    data = bytes(range(256)) * 4 + b"\x00\x00"
    assert device.ping(data) == data
    assert device.ping() == b""


def _expect_error(device, status):
    frame = device.read_frame()
    assert frame.type == 0xFF and frame.seq == 0xFFFF and frame.status == status, frame
    assert frame.json()["error"] == Status(status).name.lower()


def test_garbled_truncated_oversized_frames_get_errors_and_it_keeps_serving(device):
    good = cobs_encode(pack_frame(Command.PING, 9, b"hello"))
    device.write_raw(b"\x00" + good[:-3] + b"\x00")  # truncated
    _expect_error(device, Status.BAD_COBS)
    corrupt = bytearray(pack_frame(Command.PING, 9, b"hello"))
    corrupt[6] ^= 0x20
    device.write_raw(b"\x00" + cobs_encode(bytes(corrupt)) + b"\x00")
    _expect_error(device, Status.BAD_CRC)
    device.write_raw(b"\x00" + cobs_encode(b"\x01\x01") + b"\x00")
    _expect_error(device, Status.SHORT_FRAME)
    device.write_raw(b"\x00" + b"\x7f" * 5000 + b"\x00")  # more than the receive buffer
    _expect_error(device, Status.OVERSIZED_FRAME)
    rng = random.Random(0)
    device.write_raw(bytes(rng.randrange(1, 256) for _ in range(300)))  # noise with no zero
    assert device.ping(b"after noise") == b"after noise"  # the request's leading zero ends the noise
    assert any(getattr(s, "status", None) == Status.BAD_COBS or getattr(s, "status", None) == Status.BAD_CRC
               for s in device.stray[-3:])
    assert device.request(Command.PING, b"v2", version=2).status == Status.BAD_VERSION
    reply = device.request(0x42, b"")
    assert (reply.type, reply.status) == (0xC2, Status.UNKNOWN_COMMAND)
    assert device.ping(b"still here") == b"still here"


def test_random_requests_never_crash_or_reset_it(device):
    """300 well-framed requests with random types and payloads: each gets
    its reply (any status), and no ready line (a restart) shows up."""
    rng = random.Random(7)
    statuses = set()
    for _ in range(300):
        command = rng.choice([c for c in range(0x00, 0x80) if c != Command.RESET] + [Command.TOKENIZE] * 40 +
                             [Command.INFER_IDS] * 40 + [Command.CLASSIFY] * 20)
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 7, 64, 300])))
        reply = device.request(command, payload)  # raises DeviceRestarted on a ready line
        assert reply.type in (command | 0x80, 0xFF)
        statuses.add(reply.status)
    assert {Status.OK, Status.BAD_UTF8, Status.UNKNOWN_COMMAND, Status.BAD_ARGUMENT} <= statuses
    assert device.ping(b"alive") == b"alive"


def test_arguments_are_checked(device):
    with pytest.raises(DeviceError) as e:
        device.call(Command.TOKENIZE, b"bad \xff utf-8")
    assert e.value.status == Status.BAD_UTF8
    with pytest.raises(DeviceError) as e:  # payload above max_payload_bytes: the frame is dropped, unread
        device.call(Command.TOKENIZE, b"x" * 2049)
    assert e.value.status == Status.OVERSIZED_FRAME
    for payload in (b"\x02\x00\x04", b"\x02\x00", struct.pack("<3H", 2, 9000, 4), struct.pack("<257H", *[5] * 257)):
        with pytest.raises(DeviceError) as e:
            device.call(Command.INFER_IDS, payload)
        assert e.value.status == Status.BAD_ARGUMENT, payload[:8]


def test_no_model_is_an_error_code_not_a_result(device):
    for call in (lambda: device.classify("free entry"), lambda: device.infer_ids([2, 500, 4])):
        with pytest.raises(DeviceError) as e:
            call()
        assert e.value.status == Status.NO_MODEL and "no model" in e.value.detail


def test_tokenize_sample_matches_hf(device):
    tok, _ = default_tokenizer()
    texts = []
    for task in TASKS:
        test = load_task(task).test
        texts += [e.text for e in random.Random(task).sample(test, 40)]
    texts += ["", "Héllo wörld — naïve café ½ 한국어 😀", "A" * 300, "x" + "\u0301" * 50]
    got = [device.tokenize(t) for t in texts]
    assert [g["ids"] for g in got] == encode(tok, texts, 256)
    assert all(g["instructions"] > 0 for g in got)
    full = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]  # the whole texts' tokens
    assert [g["truncated"] for g in got] == [n > 256 - 2 for n in full] and any(g["truncated"] for g in got)


def test_instruction_count_follows_icount(built):
    """SysTick under -icount counts virtual time: halving 2**shift halves
    the reported count, whose factor was set for shift 6."""
    text = "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. " * 5
    counts = {}
    for shift in (6, 5):
        with QemuDevice(built["elf"], "qemu-m4", icount_shift=shift) as dev:
            counts[shift] = [dev.tokenize(text)["instructions"] for _ in range(3)]
    # deterministic up to the tick: one tick is 40/64 instruction at shift 6
    assert max(counts[6]) - min(counts[6]) <= 1 and max(counts[5]) - min(counts[5]) <= 1
    assert abs(counts[5][0] * 2 - counts[6][0]) <= 4


def test_reset_prints_the_ready_line_again(built):
    with QemuDevice(built["elf"], "qemu-m4") as dev:
        assert dev.reset()["board"] == "qemu-m4"
        assert dev.ping(b"x") == b"x"


def test_board_descriptions():
    """Every boards/*/board.toml loads, and PlatformIO sees its environment (generated from it)."""
    from embbert.device.platformio_ini import project_config

    names = board_names()
    assert names == sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.toml")) and "qemu-m4" in names
    assert "[env:" not in (FIRMWARE_DIR / "platformio.ini").read_text()  # no board lives there
    config = project_config()
    for name in names:
        board = load_board(name)
        assert config.get(f"env:{board.pio_env('aot')}", "custom_embbert_board") == name
        if board.build.linker_script:  # the linker script's MEMORY says what board.toml says
            script = board.path(board.build.linker_script).read_text()
            for region, size in (("FLASH", board.memory.flash_bytes), ("RAM", board.memory.ram_bytes)):
                m = re.search(rf"^\s*{region}\s.*LENGTH\s*=\s*(\d+)K", script, re.M)
                assert int(m.group(1)) * 1024 == size, (name, region)


def test_bad_board_description_is_one_clear_error(tmp_path):
    from embbert.errors import UserError

    (tmp_path / "bad").mkdir()
    spec = tomllib.loads((BOARDS_DIR / "qemu-m4" / "board.toml").read_text())
    spec["name"] = "bad"
    spec["counter"]["unit"] = "cycles"
    (tmp_path / "bad" / "board.toml").write_text(
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in spec.items() if not isinstance(v, dict)) + "\n" +
        "\n".join(f"[{k}]\n" + "\n".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
                  for k, v in spec.items() if isinstance(v, dict)))
    with pytest.raises(UserError, match="instructions"):
        load_board("bad", tmp_path)


def test_build_refusals(art_dir, tmp_path_factory, tmp_path):
    import shutil

    from test_aot import SMOKE, _convert

    r = run_cli("build", art_dir, "--board", "nucleo-l4r5zi", "--backend", "tflm")
    assert r.returncode == 2 and "needs a model" in r.stderr
    big = tmp_path / "big"
    shutil.copytree(_convert(tmp_path_factory, SMOKE), big, ignore=shutil.ignore_patterns("build"))
    manifest = json.loads((big / "manifest.json").read_text())
    (big / "manifest.json").write_text(json.dumps({**manifest, "arena_bytes": 900_000}))
    r = run_cli("build", big, "--board", "nucleo-l4r5zi")
    assert r.returncode == 2 and "does not fit nucleo-l4r5zi" in r.stderr and "RAM" in r.stderr
    r = run_cli("build", big, "--board", "qemu-m4", "--backend", "tflm")
    assert r.returncode == 2 and "only real boards" in r.stderr
    assert not (big / "build").exists()


# The full EmbBERT's aot arena (the board's optimized kernels) with its L x L attention maps, before
# they ran in row tiles: more than 128 kB of SRAM can hold, for the refusal's wording.
EMBBERT_AOT_ARENA_WITH_MAPS = 135_552
# and without them, nor transposed copies (convert/aot/rhs_transpose.py), with FULLY_CONNECTED and the
# causal conv over their input: test_full_embbert_builds_for_stm32f405 measures it
EMBBERT_AOT_ARENA = 98_816


def test_an_arena_too_large_for_stm32f405_is_refused_with_the_shortfall():
    """128 kB of SRAM cannot hold EmbBERT's arena with its L x L maps: the refusal names the
    arena, the RAM, the shortfall and the largest arena that would fit."""
    from embbert.device.build import CORE_RAM_BYTES, check_model_fits
    from embbert.errors import UserError

    board = load_board("qemu-stm32f405")
    stack, arena = board.build.stack_bytes, EMBBERT_AOT_ARENA_WITH_MAPS
    room = 131_072 - stack - CORE_RAM_BYTES
    with pytest.raises(UserError) as e:
        check_model_fits({"arena_bytes": arena, "flash_bytes": 361_403}, board, "aot")
    assert str(e.value) == (
        f"the model does not fit qemu-stm32f405 with backend aot: arena {arena:,} B + stack {stack:,} B + buffers "
        f"{CORE_RAM_BYTES:,} B = {arena + stack + CORE_RAM_BYTES:,} B > RAM 131,072 B, "
        f"{arena - room:,} B short; an arena of at most {room:,} B would fit")
    check_model_fits({"arena_bytes": room, "flash_bytes": 361_403}, board, "aot")


@pytest.mark.slow
def test_full_embbert_builds_for_stm32f405(tmp_path):
    """The real thing: EmbBERT (untrained weights, the real shape), converted, then
    `embbert build --board qemu-stm32f405`: the arena without L x L maps, and the whole
    firmware within the chip's 128 kB of SRAM (about a minute, most of it the conversion)."""
    from test_convert import _make_run

    from embbert.presets import get_preset

    run = _make_run(tmp_path / "run", get_preset("embbert"), seed=3)
    run_cli("convert", run, "--out", tmp_path / "art", "--calibration", "20", "--test-limit", "20", check=True)
    r = run_cli("build", tmp_path / "art", "--board", "qemu-stm32f405", "--json", check=True)
    report = json.loads(r.stdout)
    assert report["aot"]["arena_bytes"] == EMBBERT_AOT_ARENA and report["ram_bytes"] <= 131_072


def test_build_with_relative_paths_from_another_folder(art_dir, tmp_path):
    """Issue 13, item 1: PlatformIO runs in firmware/, so a relative ART_DIR or --out
    given elsewhere reached it unresolved ("EMBBERT_GEN_DIR must name a folder with build.json")."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    report = json.loads(run_cli("build", os.path.relpath(art_dir, work), "--board", "qemu-m4", "--out", "fw", "--json",
                                check=True, cwd=work).stdout)
    assert report["elf"] == str(work / "fw" / "firmware.elf") and (work / "fw" / "firmware.elf").is_file()


def _refused(proc, *words):
    """One error line (after the progress line), exit code 2."""
    errors = [line for line in proc.stderr.strip().splitlines() if not line.startswith("building the firmware")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert all(w in errors[0] for w in words), errors[0]


@pytest.mark.parametrize("damage, words", [
    ("flipped-byte", ["model.tflite is not the file manifest.json names", "changed or damaged"]),
    ("truncated", ["model.tflite is not the file manifest.json names"]),
    ("empty", ["model.tflite is not the file manifest.json names", "(0 B"]),
    ("tokenizer", ["tokenizer.json is not the file manifest.json names"]),
    ("manifest-keys", ["manifest.json is not a complete manifest", "labels: field required", "run `embbert convert`"]),
    ("aot-source", ["aot/optimized/model_aot.cc is not the file manifest.json names", "changed or damaged"]),
    ("aot-missing", ["has a manifest.json but no aot/optimized/aot_model_info.h", "run `embbert convert` again"]),
    ("old-manifest", ["manifest_version 1, and this toolkit reads version", "run `embbert convert` again"]),
])
def test_build_refuses_an_artifact_its_manifest_does_not_describe(tmp_path_factory, tmp_path, damage, words):
    """Issue 13, items 4 and 9: a bit-flipped model built (and its INFO claimed the manifest's
    sha256); a truncated one was a struct.error, a manifest without a key a KeyError after
    writing build/. Now one line, exit 2, nothing written."""
    import shutil

    from test_aot import SMOKE, _convert

    art = tmp_path / "art"
    shutil.copytree(_convert(tmp_path_factory, SMOKE), art, ignore=shutil.ignore_patterns("build"))
    model = bytearray((art / "model.tflite").read_bytes())
    if damage == "flipped-byte":
        model[len(model) // 2] ^= 0x01
        (art / "model.tflite").write_bytes(model)
    elif damage in ("truncated", "empty"):
        (art / "model.tflite").write_bytes(model[: len(model) // 3] if damage == "truncated" else b"")
    elif damage == "tokenizer":
        (art / "tokenizer.json").write_text((art / "tokenizer.json").read_text().replace("[UNK]", "[UNX]"))
    elif damage == "aot-source":  # qemu-m4's kernels (board.toml build.aot_kernels)
        source = art / "aot" / "optimized" / "model_aot.cc"
        source.write_text(source.read_text().replace("kNumLogits", "kNumLogits ", 1))
    elif damage == "aot-missing":
        (art / "aot" / "optimized" / "aot_model_info.h").unlink()
    elif damage == "old-manifest":
        manifest = json.loads((art / "manifest.json").read_text())
        (art / "manifest.json").write_text(json.dumps({**manifest, "manifest_version": 1}))
    else:
        manifest = json.loads((art / "manifest.json").read_text())
        del manifest["labels"]
        (art / "manifest.json").write_text(json.dumps(manifest))
    _refused(run_cli("build", art, "--board", "qemu-m4"), *words)
    assert not (art / "build").exists()


def test_build_copies_the_artifacts_aot_sources_and_never_runs_the_generator(tmp_path_factory, tmp_path):
    """`embbert build` (and `embbert micropython`, the same step) compiles what `embbert convert`
    generated: the generated folder holds the artifact's files byte for byte, and the code
    generator (convert/aot/codegen.py) and the .tflite reader are never imported."""
    from test_aot import SMOKE, _convert

    art = _convert(tmp_path_factory, SMOKE)
    script = f"""
import json, sys
from pathlib import Path
from embbert.convert.manifest import read_manifest
from embbert.device.build import generate_sources
from embbert.micropython.module import write_module
art = Path({str(art)!r})
for kernels in ("reference", "optimized"):
    generate_sources(art, Path({str(tmp_path)!r}) / kernels, "aot", read_manifest(art), kernels=kernels)
write_module(art, Path({str(tmp_path)!r}) / "usermod")
print(json.dumps(sorted(m for m in sys.modules if m.startswith("embbert.convert"))))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    imported = json.loads(proc.stdout)
    assert "embbert.convert.aot.artifact" in imported
    assert not {"embbert.convert.aot.codegen", "embbert.convert.aot.graph"} & set(imported), imported
    for kernels in ("reference", "optimized"):
        for name in ("model_aot.h", "model_aot.cc", "aot_model_info.h"):
            assert (tmp_path / kernels / name).read_bytes() == (art / "aot" / kernels / name).read_bytes()
    assert ((tmp_path / "usermod" / "embbert" / "model_aot.cpp").read_bytes()
            == (art / "aot" / "reference" / "model_aot.cc").read_bytes())


def test_build_refuses_an_unwritable_out(art_dir, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for out in (tmp_path / "file" / "fw", Path("/proc/embbert-test/fw")):
        _refused(run_cli("build", art_dir, "--board", "qemu-m4", "--out", out), "cannot write", str(out))


def test_real_board_without_platform_needs_internet(art_dir):
    from embbert.device.platformio_env import platform_installed

    upstream = load_board("esp32-s3-devkitc").upstream_platform  # pinned, espressif32@X.Y.Z
    if platform_installed(upstream):
        pytest.skip(f"{upstream} is installed here")
    r = run_cli("build", art_dir, "--board", "esp32-s3-devkitc")
    assert r.returncode == 2 and f"needs the PlatformIO platform '{upstream}'" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("board", ["qemu-m7", "qemu-stm32f405"])
def test_other_qemu_boards_build_and_boot(board, art_dir, tmp_path):
    """qemu-stm32f405: its clock set-up returns where no RCC answers, USART1 carries
    the frames both ways, and INFO's memory (sections.ld's symbols) is the map's."""
    report = json.loads(run_cli("build", art_dir, "--board", board, "--out", tmp_path / board, "--json",
                                check=True).stdout)
    with QemuDevice(report["elf"], board) as dev:
        info = dev.info()
        assert info["board"] == board
        assert (info["flash_bytes"], info["ram_bytes"]) == (report["flash_bytes"], report["ram_bytes"])
        assert dev.tokenize("Hello, world!")["ids"] == [2, *default_tokenizer()[0].encode("Hello, world!").ids[1:-1], 4]


@pytest.mark.slow
def test_tokenize_every_test_sentence_on_qemu(device):
    """All 10,859 test sentences over the serial link (~15 min: QEMU's UART
    takes one byte per event-loop turn)."""
    tok, _ = default_tokenizer()
    differing = {}
    for task in TASKS:
        texts = [e.text for e in load_task(task).test]
        got = [device.tokenize(t)["ids"] for t in texts]
        expected = encode(tok, texts, 256)
        differing[task] = sum(a != b for a, b in zip(got, expected))
    assert differing == {task: 0 for task in TASKS}


@pytest.mark.parametrize("board", [n for n in board_names()  # the Cortex-M boards on hardware (boards/*/board.toml)
                                   if load_board(n).kind == "hardware" and load_board(n).build.cpu.startswith("cortex-m")])
def test_real_board_portable_sources_compile(board, built, tmp_path):
    """What can be checked here of the STM32 envs: the portable core, the
    no-model backend, the generated tables and the DWT counter, compiled with
    the board's CPU flags. (The Arduino port needs the STM32duino core, from
    the registry; ESP32 needs the Xtensa toolchain, from the registry.)"""
    spec = load_board(board).build
    sources = [*sorted((FIRMWARE_DIR / "src").glob("*.cc")), FIRMWARE_DIR / "src/backends/none/model_runner_none.cc",
               BOARDS_DIR / "common/dwt/dwt_counter.cc",
               (json.loads(json.dumps(built))["elf"].rsplit("/", 1)[0] + "/generated/tokenizer_tables.cc")]
    flags = ["-std=gnu++17", "-O2", f"-mcpu={spec.cpu}", "-mthumb", f"-mfpu={spec.fpu}", f"-mfloat-abi={spec.float_abi}",
             "-fno-exceptions", "-fno-rtti", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
             f'-DEMBBERT_BOARD="{board}"', '-DEMBBERT_COUNTER_UNIT="cycles"', f"-I{FIRMWARE_DIR / 'src'}"]
    for i, src in enumerate(sources):
        proc = subprocess.run(["arm-none-eabi-g++", *flags, "-c", str(src), "-o", str(tmp_path / f"{i}.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_model_fits_checks_each_backends_own_memory(tmp_path_factory):
    """aot is checked against its own plan (arena, weights), never TFLite-Micro's
    arena; tflm against the manifest's TFLite-Micro arena and the .tflite. On a
    board just big enough for the aot plan, a real (smoke) model builds with aot
    and is refused for tflm, saying aot fits."""
    from test_aot import SMOKE, _convert

    from embbert.device import build
    from embbert.errors import UserError

    art = _convert(tmp_path_factory, SMOKE)
    manifest = json.loads((art / "manifest.json").read_text())
    aot = build._aot_manifest(manifest)
    assert aot["arena_bytes"] < build.tflm_arena_bytes(manifest)  # the aot plan needs less than TFLite-Micro
    board = load_board("nucleo-l4r5zi")
    overhead = board.build.stack_bytes + build.CORE_RAM_BYTES

    def small(ram):
        return board.model_copy(update={"memory": board.memory.model_copy(update={"ram_bytes": ram})})

    build._check_fits(manifest, small(aot["arena_bytes"] + overhead), "aot")
    with pytest.raises(UserError, match="with backend aot: arena"):
        build._check_fits(manifest, small(aot["arena_bytes"] + overhead - 1), "aot")
    with pytest.raises(UserError, match="with backend tflm: arena .* the aot backend fits"):
        build._check_fits(manifest, small(aot["arena_bytes"] + overhead), "tflm")
    build._check_fits(manifest, small(build.tflm_arena_bytes(manifest) + overhead), "tflm")
    tiny_flash = board.model_copy(update={"memory": board.memory.model_copy(update={"flash_bytes": aot["flash_bytes"]})})
    build._check_fits(manifest, tiny_flash, "aot")  # the weights fit; the .tflite (larger) is not asked
    with pytest.raises(UserError, match="with backend tflm: .* > flash"):
        build._check_fits(manifest, tiny_flash, "tflm")


# The board's own port (start-up, SysTick counter, UART) around a loop of a known
# length: app_setup() times `subs; bne` loops of N1 and N2 turns (2 instructions a
# turn) and prints the raw counter deltas. Their difference is 2 * (N2 - N1)
# instructions exactly; its ticks give the board's ticks per instruction.
COUNTER_PROBE = r"""
#include <stdint.h>
#include "app.h"
#include "port.h"

static uint64_t timed_loop(uint32_t turns) {
  const uint64_t start = port_counter();
  __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(turns) : : "cc");
  return port_counter() - start;
}

static void print_u64(uint64_t v) {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = ' ';
  do { buf[--i] = static_cast<char>('0' + v % 10); v /= 10; } while (v);
  port_write(reinterpret_cast<const uint8_t*>(buf + i), sizeof buf - i);
}

void app_setup(void) {
  port_init();
  print_u64(timed_loop(N1));
  print_u64(timed_loop(N2));
  port_write(reinterpret_cast<const uint8_t*>("\n"), 1);
}

void app_poll(void) { port_idle(); }
"""


def _build_counter_probe(board, out, n1: int, n2: int):
    """The probe, compiled and linked as embbert_board.py builds the board (flags from board.toml)."""
    spec = board.build
    (out / "probe.cc").write_text(COUNTER_PROBE)
    cpu = [f"-mcpu={spec.cpu}", "-mthumb", f"-mfpu={spec.fpu}", f"-mfloat-abi={spec.float_abi}"]
    dirs = [board.path(s) for s in spec.sources]
    sources = [out / "probe.cc", *[p for d in dirs for p in sorted(d.glob("*.cc"))]]
    cmd = ["arm-none-eabi-g++", *cpu, "-std=gnu++17", "-O2", "-fno-exceptions", "-fno-rtti", "-ffunction-sections",
           "-fdata-sections", f"-I{FIRMWARE_DIR / 'src'}", f'-DEMBBERT_BOARD="{board.name}"',
           f'-DEMBBERT_COUNTER_UNIT="{board.counter.unit}"', f"-DEMBBERT_BAUDRATE={board.serial.baudrate}",
           f"-DN1={n1}u", f"-DN2={n2}u", *map(str, sources), "--specs=nano.specs", "-nostartfiles",
           *[f"-L{d}" for d in dirs], "-T", str(board.path(spec.linker_script)), "-Wl,--gc-sections",
           f"-Wl,--defsym=__stack_size__={spec.stack_bytes}", "-o", str(out / "probe.elf")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "probe.elf"


def _run_probe(board, elf) -> list[int]:
    import serial

    from embbert.device.qemu import free_port

    port = free_port()
    qemu = subprocess.Popen(board.emulator_command(elf, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                link = serial.serial_for_url(board.emulator.url.format(port=port), timeout=20)
                break
            except serial.SerialException:
                assert time.monotonic() < deadline, "no QEMU serial"
                time.sleep(0.05)
        line = link.readline()
        link.close()
    finally:
        qemu.kill()
        qemu.wait()
    return [int(x) for x in line.split()]


@pytest.mark.parametrize("name", [n for n in board_names() if load_board(n).kind == "qemu"])
def test_counter_counts_a_known_number_of_instructions(name, tmp_path):
    """board.toml's counter factor turns the counter into instructions: 200,000
    instructions of a known loop (the difference of two loops, so the calls and
    the loop's set-up cancel) read as 200,000 (+-0.01 %), and the ticks per
    instruction measured are (1e9 / cpu_hz) / 2**icount_shift inverted."""
    board = load_board(name)
    n1, n2 = 50_000, 150_000
    ticks = _run_probe(board, _build_counter_probe(board, tmp_path, n1, n2))
    known = 2 * (n2 - n1)
    measured = (ticks[1] - ticks[0]) * board.counter.num / board.counter.den
    assert abs(measured - known) <= 20, (ticks, measured)
    ticks_per_instruction = board.emulator.cpu_hz * 2 ** board.emulator.icount_shift / 1e9
    assert (ticks[1] - ticks[0]) / known == pytest.approx(ticks_per_instruction, rel=1e-4)
