"""Recovery: after a RESET (and after the harness's hard reset) the board
boots again, says the same INFO and still classifies as the host does."""

import pytest

pytestmark = pytest.mark.bare_protocol  # RESET and the ready line are the framed protocol's


SENTENCE = "Congratulations! You have won a free prize, call now to claim it."


def _same_info(now, before):
    diff = {k: (now.get(k), before.get(k)) for k in set(now) | set(before) if now.get(k) != before.get(k)}
    assert not diff, f"INFO changed (now, before): {diff}"


def _classifies_as_host(device, reference, text):
    got, host = device.classify(text), reference(text)
    assert got["label"] == host["host_label"] and got["logits"] == host["host_logits"]


def test_reset_then_info_and_classify(device, info, board, reference, task_sample):
    _classifies_as_host(device, reference, SENTENCE)
    ready = device.reset()
    assert ready["board"] == board.name and ready["protocol"] == info["protocol"]
    _same_info(device.info(), info)
    _classifies_as_host(device, reference, SENTENCE)
    _classifies_as_host(device, reference, task_sample[0].text)


def test_reset_twice_in_a_row(device, info):
    device.reset()
    device.reset()
    assert device.ping(b"after two resets") == b"after two resets"
    _same_info(device.info(), info)


def test_hard_reset_recovers(link, info, reference):
    """The harness's last resort (a new emulator on QEMU; RESET, then a DTR/RTS
    pulse, on a port) leaves a board that answers as before."""
    link.hard_reset()
    assert link.alive()
    _same_info(link.device.info(), info)
    _classifies_as_host(link.device, reference, SENTENCE)
