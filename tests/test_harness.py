"""The harness on the emulated board: `embbert deploy` (convert + build + a
background emulator + smoke check) and `embbert eval` (resumable, retried,
fault-injected), with a smoke-sized model so each run takes seconds."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import run_cli
from test_aot import SMOKE
from test_convert import _make_run

from embbert.device.boards import load_board
from embbert.harness import emulator
from embbert.harness.evaluate import SentenceFailed, ask, prepare_out, read_results
from embbert.harness.link import FaultyPort, QemuLink

LIMIT = 40


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """`embbert deploy RUN --board qemu-m4 --full-length`: the run is converted
    into RUN/artifact; the emulator is left running (stopped at teardown)."""
    run = _make_run(tmp_path_factory.mktemp("harness") / "run", SMOKE, seed=5)
    proc = run_cli("deploy", run, "--board", "qemu-m4", "--full-length", "--json", check=True)
    result = json.loads(proc.stdout)
    yield result
    emulator.stop(os.path.dirname(result["build"]["elf"]))


@pytest.fixture(scope="module")
def clean_eval(deployed, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "clean"
    proc = run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--task", "sms_spam", "--limit", LIMIT,
                   "--out", out, "--json", check=True)
    return out, json.loads(proc.stdout)


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


KEYS = ("index", "device_label", "device_logits", "n_tokens", "host_logits", "status")


def test_deploy_converts_builds_starts_and_smoke_checks(deployed):
    art = deployed["artifact"]
    assert art.endswith("artifact") and os.path.isfile(os.path.join(art, "manifest.json"))
    assert deployed["build"]["backend"] == "aot" and deployed["build"]["flash_bytes"] > 0
    smoke = deployed["smoke"]
    assert smoke["info"]["full_length"] is True and len(smoke["sentences"]) == 5
    assert all(s["bit_exact"] for s in smoke["sentences"])
    state = emulator.running(os.path.dirname(deployed["build"]["elf"]))
    assert state and state["pid"] == deployed["emulator"]["pid"] and state["url"].startswith("socket://")


def test_deploy_reuses_the_conversion_of_the_same_checkpoint(deployed):
    from embbert.harness.deploy import artifact_for

    run = os.path.dirname(deployed["artifact"])
    stamp = os.path.join(deployed["artifact"], "source.json")
    before = os.stat(os.path.join(deployed["artifact"], "model.tflite")).st_mtime_ns
    assert str(artifact_for(run, None, 500)) == deployed["artifact"] and os.path.isfile(stamp)
    assert os.stat(os.path.join(deployed["artifact"], "model.tflite")).st_mtime_ns == before


def test_eval_matches_the_host_bit_for_bit(clean_eval):
    out, s = clean_eval
    assert s["sentences"] == s["ok"] == LIMIT and s["failed"] == 0
    assert s["full_length"] is True and s["bit_exact_fraction"] == 1.0
    assert s["accuracy_device"] == s["accuracy_host_int8"]
    assert s["agreement_device_vs_host_int8"] == 1.0 and s["token_count_match_fraction"] == 1.0
    assert s["accuracy_float"] is not None and 0 <= s["agreement_device_vs_float"] <= 1
    assert s["latency"]["unit"] == "instructions" and 0 < s["latency"]["median"] <= s["latency"]["p90"] <= s["latency"]["max"]
    assert s["throughput"]["sentences_per_s"] > 0 and s["throughput"]["serial_overhead_share"] >= 0
    assert sum(map(sum, s["confusion"]["rows_true_cols_device"])) == LIMIT
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(LIMIT))
    for name in ("summary.json", "report.md", "latency_vs_tokens.png", "confusion.png", "memory.png"):
        assert (out / name).is_file(), name
    assert "bit-identical to host TFLite-Micro: 100.00%" in (out / "report.md").read_text()


def test_eval_resumes_after_being_killed_twice(deployed, clean_eval, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from embbert.cli import main; main()", "eval", deployed["artifact"], "--board",
           "qemu-m4", "--task", "sms_spam", "--limit", str(LIMIT), "--out", str(out)]
    for stop_at in (8, 20):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            path = out / "results.jsonl"
            if path.is_file() and path.read_bytes().count(b"\n") >= stop_at:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = len(read_results(out / "results.jsonl"))
    assert 8 <= done_before < LIMIT
    run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--task", "sms_spam", "--limit", LIMIT,
            "--out", out, check=True)
    rows = _rows(out)
    assert sorted(r["index"] for r in rows) == list(range(LIMIT))  # every sentence exactly once
    clean = {r["index"]: r for r in _rows(clean_eval[0])}
    assert all(all(r[k] == clean[r["index"]][k] for k in KEYS) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sentences"] == LIMIT and len(summary["sessions"]) == 1  # killed sessions write no summary


def test_eval_through_a_lossy_link_gives_identical_results(deployed, clean_eval, tmp_path):
    out = tmp_path / "faulty"
    proc = run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--task", "sms_spam", "--limit", 15,
                   "--out", out, "--inject-faults", "0.01", "--json", check=True)
    s = json.loads(proc.stdout)
    faults = s["link"]["fault_injection"]
    assert faults["corrupted_bytes"] > 0 and faults["dropped_bytes"] > 0 and s["link"]["retries"] > 0
    assert s["failed"] == 0 and s["bit_exact_fraction"] == 1.0
    clean = {r["index"]: r for r in _rows(clean_eval[0])}
    assert all(all(r[k] == clean[r["index"]][k] for k in KEYS) for r in _rows(out))


def test_a_hung_or_dead_board_is_reset_then_recorded_as_failed(deployed):
    board = load_board("qemu-m4")
    stats = {"retries": 0, "resets": 0}
    with QemuLink(board, deployed["build"]["elf"], timeout=2.0) as link:
        expected = link.device.classify("free entry to win a prize")
        os.kill(link._qemu.proc.pid, signal.SIGSTOP)  # the board hangs
        again = ask(link, lambda d: d.classify("free entry to win a prize"), resets=2, stats=stats)
        assert stats["resets"] == 1 and again["logits"] == expected["logits"]
        os.kill(link._qemu.proc.pid, signal.SIGSTOP)
        with pytest.raises(SentenceFailed, match="no answer after 0 hard resets"):
            ask(link, lambda d: d.classify("hello"), resets=0, stats=stats)
        os.kill(link._qemu.proc.pid, signal.SIGKILL)  # the emulator dies: its link breaks
        again = ask(link, lambda d: d.classify("free entry to win a prize"), resets=1, stats=stats)
        assert stats["resets"] == 2 and again["logits"] == expected["logits"]


def _fails(proc, *words):
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in line, line


def test_eval_refuses_a_board_running_another_model(deployed, tmp_path):
    import hashlib
    import shutil

    other = tmp_path / "other"
    shutil.copytree(deployed["artifact"], other, ignore=shutil.ignore_patterns("build"))
    model = (other / "model.tflite").read_bytes() + b"\0" * 16  # another file, still a loadable model
    (other / "model.tflite").write_bytes(model)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["model_file"]["sha256"] = hashlib.sha256(model).hexdigest()
    (other / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("eval", other, "--board", "qemu-m4", "--port", deployed["emulator"]["url"], "--task", "sms_spam",
                   "--limit", 3, "--out", tmp_path / "e")
    _fails(proc, "the board runs model", "embbert deploy")
    assert not (tmp_path / "e" / "results.jsonl").exists()


def _silent_server():
    """A TCP 'board' that accepts and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    return server, held  # the caller keeps the accepted connection open


def test_eval_bad_ports_and_a_silent_board(deployed, tmp_path):
    art = deployed["artifact"]
    base = ("eval", art, "--board", "qemu-m4", "--task", "sms_spam", "--limit", 2, "--out", tmp_path / "e")
    _fails(run_cli(*base, "--port", "/dev/ttyNOPE0"), "cannot open port /dev/ttyNOPE0")
    server, _held = _silent_server()
    _fails(run_cli(*base, "--port", f"socket://127.0.0.1:{server.getsockname()[1]}", "--timeout", "1",
                   "--resets", "0"), "does not answer INFO")
    server.close()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    _fails(run_cli(*base, "--port", f"socket://127.0.0.1:{port}"), "nothing answers at")


def test_a_port_in_use_is_refused(deployed, tmp_path):
    import pty

    import serial

    master, slave = pty.openpty()
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)  # another program holds the port
    try:
        proc = run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--port", path, "--task", "sms_spam",
                       "--limit", 2, "--out", tmp_path / "e")
        _fails(proc, "is in use")
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


def test_eval_of_a_users_file_long_empty_and_bad_text(deployed, tmp_path):
    data = tmp_path / "mine.jsonl"
    rows = [{"t": "ok", "y": "ham"}, {"t": "win a prize now " * 400, "y": "spam"}, {"t": "see you at 5", "y": "ham"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    proc = run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--data", data, "--text-col", "t",
                   "--label-col", "y", "--out", tmp_path / "e", "--json", check=True)
    s = json.loads(proc.stdout)
    assert s["sentences"] == 3 and s["failed"] == 0 and s["bit_exact_fraction"] == 1.0
    long_row = _rows(tmp_path / "e")[1]
    assert long_row["n_tokens"] == long_row["host_n_tokens"] == SMOKE.max_len
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"t,y\n\xff\xfe caf\xe9,ham\n")
    _fails(run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--data", bad, "--text-col", "t",
                   "--label-col", "y", "--out", tmp_path / "b"), "UTF-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"t": "", "y": "ham"}) + "\n")
    _fails(run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--data", empty, "--text-col", "t",
                   "--label-col", "y", "--out", tmp_path / "m"), "line 1", "'t' is empty")
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"t": "hi", "y": "maybe"}) + "\n")
    _fails(run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--data", wrong, "--text-col", "t",
                   "--label-col", "y", "--out", tmp_path / "w"), "'maybe'", "ham, spam")


def test_an_unreadable_model_is_one_clear_error(deployed, tmp_path):
    import shutil

    art = tmp_path / "art"
    shutil.copytree(deployed["artifact"], art, ignore=shutil.ignore_patterns("build"))
    (art / "model.tflite").write_bytes(b"not a model")
    _fails(run_cli("eval", art, "--board", "qemu-m4", "--task", "sms_spam", "--out", tmp_path / "e"),
           "does not match the sha256")
    (art / "manifest.json").write_text("{ no")
    _fails(run_cli("deploy", art, "--board", "qemu-m4"), "manifest.json is not valid JSON")


# -- pieces, without a board ---------------------------------------------------
def test_results_keep_whole_lines_only(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"index": 0, "status": "ok"}\n{"index": 1, "status": "ok"}\n{"index": 2, "sta')
    assert sorted(read_results(path)) == [0, 1]
    assert path.read_bytes().endswith(b"}\n")


def test_another_evaluation_in_out_is_refused(tmp_path):
    from embbert.errors import UserError

    ident = {"model_sha256": "a", "tokenizer_sha256": "b", "board": "qemu-m4", "data": "task x", "limit": None}
    assert prepare_out(tmp_path, ident, force=False) == {}
    with pytest.raises(UserError, match="different model_sha256"):
        prepare_out(tmp_path, {**ident, "model_sha256": "c"}, force=False)
    assert prepare_out(tmp_path, {**ident, "model_sha256": "c"}, force=True) == {}


def test_faulty_port_is_seeded_and_garbles_about_its_rate():
    class Sink:
        def __init__(self):
            self.data = b""

        def write(self, data):
            self.data += data

    outs = []
    for _ in range(2):
        sink = Sink()
        port = FaultyPort(sink, 0.01, seed=3)
        port.write(bytes(range(1, 256)) * 80)
        outs.append((sink.data, port.counts()))
    assert outs[0] == outs[1]
    counts = outs[0][1]
    assert 100 < counts["corrupted_bytes"] + counts["dropped_bytes"] < 320  # 1 % of 20,400 bytes



def test_cycles_become_microseconds_at_the_boards_clock():
    from embbert.harness.summary import _latency

    rows = [{"counter": 120_000 * k, "n_tokens": 10 * k} for k in (1, 2, 3)]
    lat = _latency(rows, "cycles", load_board("nucleo-l4r5zi"))  # 120 MHz
    assert lat["latency"]["us"]["median"] == pytest.approx(2000.0) and lat["latency"]["us"]["max"] == pytest.approx(3000.0)
    assert lat["latency_per_token"]["slope"] == pytest.approx(12_000.0)
    assert "us" not in _latency(rows, "instructions", load_board("qemu-m4"))["latency"]


def test_resuming_on_firmware_of_another_mode_is_refused(deployed, clean_eval, tmp_path):
    import shutil

    out = tmp_path / "e"
    shutil.copytree(clean_eval[0], out)
    (out / "firmware.json").write_text(json.dumps({"backend": "aot", "full_length": False}))
    proc = run_cli("eval", deployed["artifact"], "--board", "qemu-m4", "--task", "sms_spam", "--limit", LIMIT,
                   "--out", out)
    _fails(proc, "was started on firmware", "'full_length': False")
