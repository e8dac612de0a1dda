"""Boot, INFO, and the board coming back after a reset."""

import pytest

from embbert.device.protocol import VERSION


def _expected_backends(build_report):
    return {build_report["backend"]} if build_report else {"aot", "tflm"}


def test_info_names_the_artifact(info, board, manifest, build_report, figures, runtime):
    figures["board"] = (f"{info['board']}, firmware {info['firmware']}, backend {info['backend']}, "
                        f"full_length {info['full_length']}, flash {info['flash_bytes']} B, RAM {info['ram_bytes']} B")
    if runtime == "bare":  # MicroPython's info() has no protocol, no frames
        assert info["protocol"] == VERSION
        assert info["max_text_bytes"] <= info["max_payload_bytes"] == 2048
    assert info["board"] == board.name
    assert info["backend"] in _expected_backends(build_report)
    assert info["model_sha256"] == manifest["model_file"]["sha256"]
    assert info["tokenizer_sha256"] == manifest["tokenizer_file"]["sha256"]
    assert info["labels"] == manifest["labels"]
    assert info["max_len"] == manifest["sequence_length"]
    assert info["vocab_size"] == manifest["config"]["vocab_size"]
    assert info["counter"] == board.counter.unit
    assert isinstance(info["full_length"], bool)
    for key, limit in (("flash_bytes", board.memory.flash_bytes), ("ram_bytes", board.memory.ram_bytes)):
        assert info[key] is None or 0 < info[key] <= limit, key
    if build_report:  # the firmware we started: what its linker map and its aot plan said
        # the port's symbols span the alignment gaps between sections (up to 15 B), the map sums the sections
        assert info["flash_bytes"] == build_report["flash_bytes"]
        assert 0 <= info["ram_bytes"] - build_report["ram_bytes"] < 16
        aot = build_report.get("aot") or (build_report if build_report.get("runtime") == "micropython" else None)
        if aot:
            assert info["arena_bytes"] == aot["arena_bytes"]
            assert info["full_length"] == aot["full_length"]


@pytest.mark.bare_protocol
def test_boot_prints_the_ready_line(device, board, info):
    """RESET reboots the firmware; the boot line names protocol, firmware, board and backend."""
    ready = device.reset()
    assert ready == {"protocol": VERSION, "firmware": info["firmware"], "board": board.name,
                     "backend": info["backend"]}
    assert device.ping(b"booted") == b"booted"


def test_ping_echoes_binary(device):
    data = bytes(range(256)) * 4 + b"\x00\x00"
    assert device.ping(data) == data
    assert device.ping() == b""
