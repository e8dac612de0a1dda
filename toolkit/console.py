"""Where output goes: results on stdout (or one JSON object with --json),
progress and messages on stderr, so `embbert ... --json | jq` always works."""

import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True)
out = Console()


class _LogLines:
    """Progress for a log file or a pipe: a plain line every 10 % or 30 s."""

    def __init__(self, description: str, total: int):
        self.description, self.total = description, total
        self.started = self.last_time = time.monotonic()
        self.last_tenth = -1

    def update(self, completed: int, status: str = "") -> None:
        tenth = completed * 10 // max(self.total, 1)
        now = time.monotonic()
        if tenth > self.last_tenth or now - self.last_time > 30 or completed == self.total:
            self.last_tenth, self.last_time = tenth, now
            err.print(f"{self.description}: {completed}/{self.total} {status} [{now - self.started:.0f} s]",
                      highlight=False, soft_wrap=True)


class _RichBar:
    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def update(self, completed: int, status: str = "") -> None:
        self.progress.update(self.task, completed=completed, status=status)


@contextmanager
def progress_bar(description: str, total: int, completed: int = 0):
    """A progress bar on stderr with a live `status` text (loss, accuracy, speed).

    On a terminal it is a rich bar; in a log file, plain lines a human can read.
    """
    if not err.is_terminal:
        bar = _LogLines(description, total)
        bar.update(completed, "(start)")
        yield bar
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        yield _RichBar(progress, progress.add_task(description, total=total, completed=completed, status=""))
