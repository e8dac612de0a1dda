"""The firmware: built offline through PlatformIO for the QEMU boards, booted
in QEMU, and driven over the framed serial protocol. QEMU always runs on a
free port and is always stopped (QemuDevice's teardown)."""

import json
import random
import re
import struct
import subprocess
import time
import tomllib

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
    assert board_names() == ["esp32-s3-devkitc", "nucleo-h743zi", "nucleo-l4r5zi", "qemu-m4", "qemu-m7"]
    ini = (FIRMWARE_DIR / "platformio.ini").read_text()
    for name in board_names():
        board = load_board(name)
        assert f"[env:{board.build.pio_env}]" in ini and f"custom_embbert_board = {name}" in ini
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


def test_build_refusals(art_dir, tmp_path):
    r = run_cli("build", art_dir, "--board", "nucleo-l4r5zi", "--backend", "tflm")
    assert r.returncode == 2 and "needs a model" in r.stderr
    manifest = {"manifest_version": 1, "arena_bytes": 900_000, "flash_bytes": 500_000, "sequence_length": 256,
                "model_file": {"sha256": "0" * 64}}
    big = tmp_path / "big"
    big.mkdir()
    (big / "tokenizer.json").write_bytes((art_dir / "tokenizer.json").read_bytes())
    (big / "manifest.json").write_text(json.dumps(manifest))
    r = run_cli("build", big, "--board", "nucleo-l4r5zi")
    assert r.returncode == 2 and "does not fit nucleo-l4r5zi" in r.stderr and "RAM" in r.stderr
    r = run_cli("build", big, "--board", "qemu-m4", "--backend", "tflm")
    assert r.returncode == 2 and "only real boards" in r.stderr
    assert not (big / "build").exists()


def test_real_board_without_platform_needs_internet(art_dir):
    from embbert.device.platformio_env import platform_installed

    if platform_installed("espressif32"):
        pytest.skip("espressif32 is installed here")
    r = run_cli("build", art_dir, "--board", "esp32-s3-devkitc")
    assert r.returncode == 2 and "needs the PlatformIO platform 'espressif32'" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_qemu_m7_builds_and_boots(art_dir, tmp_path):
    report = json.loads(run_cli("build", art_dir, "--board", "qemu-m7", "--out", tmp_path / "m7", "--json",
                                check=True).stdout)
    with QemuDevice(report["elf"], "qemu-m7") as dev:
        assert dev.info()["board"] == "qemu-m7"
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


@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "nucleo-h743zi"])
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
    aot = build._aot_manifest(art, manifest)
    assert aot["arena_bytes"] < build.tflm_arena_bytes(manifest)  # the aot plan needs less than TFLite-Micro
    board = load_board("nucleo-l4r5zi")
    overhead = board.build.stack_bytes + build.CORE_RAM_BYTES

    def small(ram):
        return board.model_copy(update={"memory": board.memory.model_copy(update={"ram_bytes": ram})})

    build._check_fits(art, manifest, small(aot["arena_bytes"] + overhead), "aot")
    with pytest.raises(UserError, match="with backend aot: arena"):
        build._check_fits(art, manifest, small(aot["arena_bytes"] + overhead - 1), "aot")
    with pytest.raises(UserError, match="with backend tflm: arena .* the aot backend fits"):
        build._check_fits(art, manifest, small(aot["arena_bytes"] + overhead), "tflm")
    build._check_fits(art, manifest, small(build.tflm_arena_bytes(manifest) + overhead), "tflm")
    tiny_flash = board.model_copy(update={"memory": board.memory.model_copy(update={"flash_bytes": aot["flash_bytes"]})})
    build._check_fits(art, manifest, tiny_flash, "aot")  # the weights fit; the .tflite (larger) is not asked
    with pytest.raises(UserError, match="with backend tflm: .* > flash"):
        build._check_fits(art, manifest, tiny_flash, "tflm")
