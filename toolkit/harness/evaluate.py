"""`embbert eval`: stream test sentences to a board, one CLASSIFY each, and
hold every answer against the host (TFLite-Micro int8 and float).

OUT/eval.json    what is evaluated (artifact, board, data): a rerun with
                 the same identity resumes, any other is refused;
OUT/results.jsonl one line per sentence, appended (and fsynced) as it goes:
                 killed at any point, the rerun continues after the last
                 whole line, so no sentence is lost or counted twice;
OUT/summary.json and OUT/report.md (+ PNGs), written at the end.

A sentence the board does not answer is retried: a garbled exchange is sent
again at once, silence gets a PING and, if that goes unanswered too, a hard
reset (up to ``resets`` times); then the sentence is recorded as failed,
with its reason, and the run goes on. An error reply to the request (its
sequence number, a non-zero status) is the board's answer: recorded as
failed with its error code at once, never sent again. A failed sentence
counts as wrong. The time spent on retries and resets is link time
(``link_s``), never on-device time: ``round_trip_s`` is the exchange that
was answered.

Nothing is written before the board has answered INFO for the artifact: a
refused evaluation leaves OUT as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import serial

from embbert.console import err, progress_bar
from embbert.device.boards import Board, load_board
from embbert.device.protocol import (Device, DeviceError, DeviceRestarted, DeviceTimeout, LinkGarbled,
                                     Status, fit_text)
from embbert.errors import UserError
from embbert.harness.link import BoardUnresponsive, Link, PortLink, QemuLink
from embbert.convert.manifest import read_manifest
from embbert.harness.reference import HostReference

RESULTS, IDENTITY, SUMMARY = "results.jsonl", "eval.json", "summary.json"
LINK_RETRIES = 300  # garbled exchanges tolerated per request (a 450-byte INFO at 1 % byte errors needs ~120)


@dataclass
class Sentence:
    index: int
    text: str
    label: str


@dataclass
class EvalOptions:
    resets: int = 3  # hard resets per sentence before it is recorded as failed
    timeout: float = 30.0  # longest wait for one reply, seconds
    fault_rate: float = 0.0  # share of bytes the fault injector corrupts or drops
    fault_seed: int = 0
    limit: int | None = None
    force: bool = False


@dataclass
class Progress:
    done: int = 0
    correct: int = 0
    failed: int = 0
    retries: int = 0

    def status(self) -> str:
        acc = f"accuracy {self.correct / self.done:.2%}" if self.done else "accuracy -"  # a failed one is wrong
        return f"{acc}  failed {self.failed}  retries {self.retries}"


# -- what is evaluated -----------------------------------------------------
def load_sentences(task: str | None, data: Path | None, text_col: str | None, label_col: str | None,
                   seed: int, labels: list[str]) -> tuple[str, list[Sentence]]:
    """(data identity, sentences): the task's test split, or every row of --data."""
    from embbert.data import load_task
    from embbert.data.files import read_examples

    if (task is None) == (data is None):
        raise UserError("give exactly one of --task NAME or --data FILE")
    if data is not None:
        if not text_col or not label_col:
            raise UserError("--data needs --text-col and --label-col")
        examples = read_examples(Path(data), (text_col, label_col, None))
        identity = f"file {Path(data).resolve()} sha256 {hashlib.sha256(Path(data).read_bytes()).hexdigest()}"
    else:
        examples = load_task(task, seed=seed).test
        identity = f"task {task} test split seed {seed}"
    unknown = sorted({e.label for e in examples} - set(labels))
    if unknown:
        raise UserError(f"label(s) {', '.join(map(repr, unknown[:5]))} are not among the model's labels "
                        f"({', '.join(labels)})")
    return identity, [Sentence(i, e.text, e.label) for i, e in enumerate(examples)]


def _identity(manifest: dict, board: Board, data_identity: str, limit: int | None) -> dict:
    return {"model_sha256": manifest["model_file"]["sha256"], "tokenizer_sha256": manifest["tokenizer_file"]["sha256"],
            "board": board.name, "data": data_identity, "limit": limit}


def check_out(out: Path, identity: dict, force: bool) -> bool:
    """May OUT take this evaluation? Reads only. True if it holds this very one (resume)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose another --out")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
            break
    path = out / IDENTITY
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read {path} ({error}); choose another --out, or --force") from None
        if saved == identity:
            return True
        if not force:
            diff = [k for k in identity if saved.get(k) != identity[k]]
            raise UserError(f"{out} holds another evaluation (different {', '.join(diff)}); "
                            "choose another --out, or --force to start over")
    elif (out / RESULTS).exists() and not force:
        raise UserError(f"{out} holds results.jsonl but no {IDENTITY}; choose another --out, or --force")
    return False


def prepare_out(out: Path, identity: dict, force: bool) -> dict[int, dict]:
    """Create OUT or reopen it for the same evaluation (checked by ``check_out``);
    returns the results so far. An OUT that cannot be written is a UserError."""
    resumed = check_out(out, identity, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not resumed:
            for name in (RESULTS, SUMMARY, "report.md", "sessions.jsonl", "firmware.json"):
                (out / name).unlink(missing_ok=True)
        path = out / IDENTITY
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(identity, indent=1))
        os.replace(tmp, path)
    except OSError as error:
        raise UserError(f"cannot write to --out {out}: {error.strerror or error}") from None
    return read_results(out / RESULTS)


def read_results(path: Path) -> dict[int, dict]:
    """Whole lines only: a line cut by a kill is removed from the file."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    rows = {}
    for line in data[:end].splitlines():
        row = json.loads(line)
        rows[row["index"]] = row
    return rows


def _append(path: Path, row: dict) -> None:
    """One whole line, fsynced; a file that cannot take it is a UserError, and
    keeps the lines it had (a line cut by a short write is removed)."""
    line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)  # one write: the line is whole, or cut and removed
            if written != len(line):
                raise OSError(errno.EFBIG, f"only {written} of {len(line)} bytes written")
            os.fsync(fd)
        except OSError as error:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass  # read_results drops a cut line on resume
            raise _unwritable(path, error) from None
    finally:
        os.close(fd)


def _unwritable(path: Path, error: OSError) -> UserError:
    """The error for a results.jsonl that cannot take another line."""
    kept = len(read_results(path)) if path.is_file() else 0
    return UserError(f"cannot write {path}: {error.strerror or error}; the {kept} sentence(s) recorded so far are "
                     "kept: make room or fix it, then run the same command again to continue")


# -- talking to the board ----------------------------------------------------
class SentenceFailed(Exception):
    """The board gave no answer to a sentence (``code`` None), or answered it with
    an error (``code``: the status name, e.g. BAD_UTF8)."""

    def __init__(self, reason: str, code: str | None = None):
        super().__init__(reason)
        self.code = code


def ask(link: Link, request, resets: int, stats: dict):
    """``request(device)`` with retries; ``stats`` counts them, and gets
    ``answer_s``: the seconds of the exchange that was answered (the time of
    the retries and resets before it is link time). SentenceFailed names the
    reason."""
    link_retries = board_resets = 0
    while True:
        started = time.perf_counter()
        try:
            reply = request(link.device)
            stats["answer_s"] = time.perf_counter() - started
            return reply
        except LinkGarbled as error:  # no reply arrived whole: send again
            link_retries += 1
            reason = f"the link garbled {link_retries} exchanges in a row ({error})"
        except DeviceError as error:  # the board's own answer to this request
            name = Status(error.status).name if error.status in Status._value2member_map_ else f"0x{error.status:02x}"
            raise SentenceFailed(str(error), name) from None
        except DeviceRestarted as error:
            link_retries += 1
            reason = str(error)
        except (DeviceTimeout, serial.SerialException) as error:
            if isinstance(error, serial.SerialException) and not link.restarts_board:
                raise  # the port is gone (unplugged?): stop; the run resumes later
            if link.alive():  # it answers: the request or the reply was lost on the way
                link_retries += 1
                reason = "replies lost on the link"
            else:
                board_resets += 1
                if board_resets > resets:
                    raise SentenceFailed(f"no answer after {resets} hard resets") from None
                stats["resets"] += 1
                err.print(f"eval: {link.board.name} does not answer; hard reset {board_resets}/{resets}",
                          highlight=False)
                try:
                    link.hard_reset()
                except BoardUnresponsive as error:
                    raise SentenceFailed(str(error)) from None
                continue
        stats["retries"] += 1
        if link_retries > LINK_RETRIES:
            raise SentenceFailed(reason)


def check_board(info: dict, manifest: dict, art_dir: Path, board: Board) -> dict:
    """INFO must name the artifact's model and tokenizer; else refuse, saying how to redeploy."""
    redeploy = f"redeploy with `embbert deploy {art_dir} --board {board.name}`"
    if info.get("model_sha256") != manifest["model_file"]["sha256"]:
        raise UserError(f"the board runs model {str(info.get('model_sha256'))[:12]}, not {art_dir}'s "
                        f"{manifest['model_file']['sha256'][:12]}; {redeploy}")
    if info.get("tokenizer_sha256") != manifest["tokenizer_file"]["sha256"]:
        raise UserError(f"the board's tokenizer {str(info.get('tokenizer_sha256'))[:12]} is not {art_dir}'s; {redeploy}")
    if info.get("labels") != manifest["labels"]:
        raise UserError(f"the board's labels {info.get('labels')} differ from the manifest's; {redeploy}")
    return info


def _firmware_mode(out: Path, info: dict, resumed: bool) -> dict:
    """Results of one evaluation come from one firmware mode (backend, full length, runtime). Reads only."""
    mode = {"backend": info.get("backend"), "full_length": info.get("full_length")}
    if info.get("runtime"):  # MicroPython; the bare firmware's INFO has none
        mode["runtime"] = info["runtime"]
    path = out / "firmware.json"
    if resumed and path.is_file() and json.loads(path.read_text()) != mode:
        raise UserError(f"{out} was started on firmware {json.loads(path.read_text())}, the board now runs {mode}; "
                        "choose another --out, or --force to start over")
    return mode


def serial_cost(device: Device, sizes=(16, 512, 1536), repeats: int = 5) -> dict:
    """Measured link cost: PING round trips of several sizes, fitted as
    seconds = a + b * wire bytes (request + reply). The PING handler does no
    work, so this is the price of moving bytes over this link. The fit goes
    through the fastest round trip of each size: a slower one waited for
    something else (a busy host), and one such wait once made the per-byte
    cost 30 times too high."""
    import numpy as np

    fastest = {}
    for size in sizes:
        payload = bytes((i * 7 + 1) % 255 + 1 for i in range(size))
        for _ in range(repeats):
            for attempt in range(10):
                started = time.perf_counter()
                try:
                    device.ping(payload)
                except (DeviceError, DeviceTimeout, DeviceRestarted):
                    continue
                wire = sum(device.last_wire_bytes)  # request + reply, as this link frames them
                fastest[wire] = min(fastest.get(wire, float("inf")), time.perf_counter() - started)
                break
    samples = len(fastest)
    if samples < 2:
        return {"fixed_s": None, "per_byte_s": None, "samples": samples}
    b, a = np.polyfit(np.array(list(fastest), float), np.array(list(fastest.values()), float), 1)
    return {"fixed_s": max(float(a), 0.0), "per_byte_s": max(float(b), 0.0), "samples": samples}


def open_link(board: Board, art_dir: Path, port: str | None, options: EvalOptions, runtime: str = "bare") -> Link:
    """The board: the port given; else, for a qemu board, deploy's running
    emulator or a fresh one of the built firmware (MicroPython's with
    runtime micropython, driven through its raw REPL). Deploy's emulator,
    named by its URL or not, is reached under its lock (one client at a time)."""
    from embbert.harness import emulator

    if runtime == "micropython":
        from embbert.micropython.board import QemuMicroPython
        from embbert.micropython.firmware import build_dir as micropython_build_dir

        build_dir, qemu_class = micropython_build_dir(art_dir, board.name), QemuMicroPython
    else:
        build_dir, qemu_class = art_dir / "build" / board.name, None
    if port is not None and runtime != "micropython":
        state = emulator.running(build_dir) if board.kind == "qemu" else None
        if state is None or state["url"] != port:
            return PortLink(board, port, options.timeout, options.fault_rate, options.fault_seed)
        return QemuLink(board, Path(state["elf"]), options.timeout, build_dir, options.fault_rate, options.fault_seed)
    if board.kind != "qemu":
        raise UserError(f"{board.name} is a hardware board: give --port (e.g. /dev/ttyACM0)")
    elf = build_dir / "firmware.elf"
    if not elf.is_file():
        flag = " --runtime micropython" if runtime == "micropython" else ""
        raise UserError(f"no firmware for {board.name} in {build_dir}; run `embbert deploy {art_dir} "
                        f"--board {board.name}{flag}`")
    background = build_dir if emulator.running(build_dir) else None
    return QemuLink(board, elf, options.timeout, background, options.fault_rate, options.fault_seed, qemu_class)


# -- the run -------------------------------------------------------------------
def evaluate(art_dir: Path, board_name: str, out: Path, sentences_spec: dict, port: str | None = None,
             options: EvalOptions | None = None, runtime: str = "bare") -> dict:
    try:
        return _evaluate(art_dir, board_name, out, sentences_spec, port, options, runtime)
    except serial.SerialException as error:
        raise UserError(f"the connection to the board was lost ({error}); what was done is kept in {out}: "
                        "run the same command again to continue") from None


def _evaluate(art_dir: Path, board_name: str, out: Path, sentences_spec: dict, port: str | None,
              options: EvalOptions | None, runtime: str) -> dict:
    from embbert.harness.summary import summarize, write_summary

    options = options or EvalOptions()
    if runtime == "micropython" and options.fault_rate > 0:
        raise UserError("--inject-faults tests the bare firmware's framed protocol; MicroPython's raw REPL has no "
                        "framing to recover with")
    started = time.monotonic()
    art_dir, out = Path(art_dir), Path(out)
    manifest = read_manifest(art_dir)
    board = load_board(board_name)
    if runtime == "micropython" and (port is not None or board.kind != "qemu"):
        raise UserError("--runtime micropython runs our MicroPython port on the QEMU boards (qemu-m4, qemu-m7)")
    data_identity, sentences = load_sentences(labels=manifest["labels"], **sentences_spec)
    if options.limit is not None:
        if options.limit < 1:
            raise UserError("--limit must be at least 1")
        sentences = sentences[:options.limit]
    if not sentences:
        raise UserError("no sentences to evaluate")
    identity = _identity(manifest, board, data_identity, options.limit)
    resumed = check_out(out, identity, options.force)
    reference = HostReference(art_dir, manifest)
    stats = {"retries": 0, "resets": 0}
    with open_link(board, art_dir, port, options, runtime) as link:
        try:
            info = ask(link, lambda device: device.info(), options.resets, stats)
        except SentenceFailed as error:
            raise UserError(f"{board.name} does not answer INFO: {error}") from None
        check_board(info, manifest, art_dir, board)
        mode = _firmware_mode(out, info, resumed)
        # the board is the artifact's: only now is anything written
        done = prepare_out(out, identity, options.force)
        try:
            (out / "firmware.json").write_text(json.dumps(mode))
        except OSError as error:
            raise UserError(f"cannot write to --out {out}: {error.strerror or error}") from None
        session = {"started_unix": round(time.time(), 1), "resumed_with": len(done)}
        with link.faults_suspended():  # the price of bytes on this link, not of its faults
            cost = serial_cost(link.device)
        _classify_all(link, sentences, done, reference, manifest, board, info, options, stats, out)
        faults = link.fault_counts()
    session.update(seconds=round(time.monotonic() - started, 1), sentences=len(sentences) - len(done),
                   faults=faults, **{k: stats[k] for k in ("retries", "resets")})
    try:
        summary = summarize(read_results(out / RESULTS), manifest, board, info, cost, info["counter"], session, out,
                            reference.has_float)
        write_summary(out, summary)
    except OSError as error:
        raise UserError(f"cannot write the summary in {out}: {error.strerror or error}; the results are kept: "
                        "run the same command again to write it") from None
    return summary


def _classify_all(link: Link, sentences: list[Sentence], done: dict[int, dict], reference: HostReference,
                  manifest: dict, board: Board, info: dict, options: EvalOptions, stats: dict, out: Path) -> None:
    """CLASSIFY each sentence not yet done, appending its line to results.jsonl."""
    unit = info["counter"]
    counts = Progress(done=len(done), correct=sum(r.get("correct", False) for r in done.values()),
                      failed=sum(r["status"] != "ok" for r in done.values()))
    slowest = 0.0
    with progress_bar(f"eval {manifest['model']} on {board.name}", len(sentences), len(done)) as bar:
        bar.update(counts.done, counts.status())
        for sentence in (s for s in sentences if s.index not in done):
            text = fit_text(sentence.text, info)  # what the board is sent, and so what the host classifies
            host = reference(text)
            row = {"index": sentence.index, "label": sentence.label, "text": sentence.text[:200],
                   "clipped": text != sentence.text,
                   **{k: v for k, v in host.items() if k != "ids"}, "host_n_tokens": host["n_tokens"]}
            before = dict(stats)
            link.device.timeout = options.timeout if slowest == 0 else min(options.timeout, max(2.0, 4 * slowest))
            t0 = time.perf_counter()
            try:
                reply = ask(link, lambda device: device.classify(text), options.resets, stats)  # text fits: sent as is
            except SentenceFailed as error:
                row.update(status="failed", error=str(error), error_code=error.code, correct=False)
                counts.failed += 1
            else:
                answer_s = stats["answer_s"]
                if stats["retries"] == before["retries"] and stats["resets"] == before["resets"]:
                    slowest = max(slowest, answer_s)
                row.update(status="ok", device_label=reply["label"], device_logits=reply["logits"],
                           n_tokens=reply["n_tokens"], counter=reply[unit],
                           tokenize_counter=reply.get(f"tokenize_{unit}"),
                           round_trip_s=round(answer_s, 6),
                           wire_bytes=sum(link.device.last_wire_bytes),
                           correct=reply["label"] == sentence.label,
                           bit_exact=reply["logits"] == host["host_logits"])
                counts.correct += row["correct"]
            # retries, PINGs and resets before the answer: link time, not the board's
            row.update(link_s=round(time.perf_counter() - t0 - row.get("round_trip_s", 0.0), 6),
                       retries=stats["retries"] - before["retries"], resets=stats["resets"] - before["resets"])
            counts.retries = stats["retries"]
            _append(out / RESULTS, row)
            counts.done += 1
            bar.update(counts.done, counts.status())
