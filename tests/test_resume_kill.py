"""A real kill: SIGKILL the `embbert train` process mid-run, resume, compare."""

import os
import signal
import subprocess
import sys
import time

import torch

ARGS = ["train", "--model", "embbert", "--task", "sms_spam", "--preset", "smoke", "--limit", "200",
        "--epochs", "3", "--seed", "5"]


def _cmd(*extra):
    return [sys.executable, "-m", "embbert", *ARGS, *map(str, extra)]


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    subprocess.run(_cmd("--out", tmp_path / "whole"), check=True, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd("--out", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "resume.pt").exists():  # the first checkpoint, at step 5 of 21
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "checkpoint.pt").exists(), "the kill came too late to test anything"

    subprocess.run(_cmd("--out", out, "--resume"), check=True, capture_output=True)
    whole = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["state_dict"]
    resumed = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert (out / "metrics.json").read_text() != ""
