"""How an emulator is started (embbert.device.qemu.launch): QEMU binds its serial
port itself (port 0) and says which; the URL is that port, never one probed
free beforehand that another emulator could take meanwhile. A stand-in for
qemu-system-arm (a Python script) plays QEMU's part."""

import socket
import sys

import pytest

from embbert.device.boards import load_board
from embbert.device.qemu import launch

# What QEMU 7.2 prints with -serial tcp:127.0.0.1:0,server=on,wait=on (copied from a real run)
FAKE_QEMU = """
import socket, sys, time
assert sys.argv[2] == "0", sys.argv  # the port placeholder: QEMU must pick the port
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
port = server.getsockname()[1]
open(sys.argv[1], "w").write(str(port))
time.sleep(0.2)  # the line comes after a while, as QEMU's does
print("qemu-system-arm: -serial tcp:127.0.0.1:0,server=on,wait=on: info: QEMU waiting for connection on: "
      "disconnected:tcp:127.0.0.1:%d,server=on" % port, flush=True)  # no braces: the command is .format()ted
server.accept()
time.sleep(30)
"""

SILENT_QEMU = "import sys; print('qemu-system-arm: cannot load kernel', flush=True); sys.exit(1)"


def _board(script: str):
    board = load_board("qemu-m4")
    command = [sys.executable, "-c", script, "{elf}", "{port}", "-icount", "shift={icount_shift}"]
    return board.model_copy(update={"emulator": board.emulator.model_copy(update={"command": command})})


def test_the_url_is_the_port_the_emulator_bound_itself(tmp_path):
    told = tmp_path / "port"  # where the stand-in writes the port it bound ({elf})
    proc, url = launch(_board(FAKE_QEMU), told, tmp_path / "qemu.log", timeout=20)
    try:
        port = int(told.read_text())
        assert url == f"socket://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_an_emulator_that_exits_before_listening_is_one_clear_error_with_its_log(tmp_path):
    with pytest.raises(RuntimeError, match="QEMU did not open its serial port.*cannot load kernel"):
        launch(_board(SILENT_QEMU), tmp_path / "x.elf", tmp_path / "qemu.log", timeout=20)
