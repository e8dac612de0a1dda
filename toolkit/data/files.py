"""A user's own labelled data: CSV, TSV (GLUE format included) or JSONL.

Every problem the user can fix is a one-line UserError naming the file and,
where it helps, the line; nothing is written anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from embbert.data.examples import Example, TaskData, split_80_10_10, split_official
from embbert.errors import UserError

# GLUE's .tsv files are not CSV-quoted (MNLI sentences contain bare quote
# marks), so tab-separated files are read with quoting off; .csv files follow
# the usual CSV quoting rules.
_TABULAR = {".csv": {}, ".tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE}}
_TABULAR[".tab"] = _TABULAR[".tsv"]
SUPPORTED_EXTENSIONS = (*_TABULAR, ".jsonl")


def _read_utf8(path: Path) -> tuple[str, str]:
    """The file's text and the sha256 of its bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"data file not found: {path}") from None
    except OSError as error:
        raise UserError(f"cannot read data file {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 (invalid byte at offset {error.start}); re-save it as UTF-8") from None
    if not text.strip():
        raise UserError(f"data file is empty: {path}")
    return text, hashlib.sha256(data).hexdigest()


def _missing_column(path: Path, column: str, columns, where: str = "") -> UserError:
    found = ", ".join(repr(c) for c in columns) or "none"
    return UserError(f"column {column!r} not found in {path}{where}; columns are: {found}")


def _ambiguous_column(path: Path, column: str, why: str, where: str = "") -> UserError:
    return UserError(f"column {column!r} of {path}{where} is ambiguous: {why}; rename the others, so it is "
                     "clear which one to read")


def _field(path: Path, line: int, column: str, value) -> str:
    """A text or label cell as a non-empty string."""
    if isinstance(value, (dict, list)) or value is None:
        raise UserError(f"{path} line {line}: column {column!r} must be a string or number, got {json.dumps(value)}")
    text = str(value).strip()
    if not text:
        raise UserError(f"{path} line {line}: column {column!r} is empty")
    return text


def _example(path: Path, line: int, row: dict, columns: tuple[str, str, str | None]) -> Example:
    text_col, label_col, pair_col = columns
    pair = _field(path, line, pair_col, row[pair_col]) if pair_col else None
    return Example(_field(path, line, text_col, row[text_col]), _field(path, line, label_col, row[label_col]), pair)


def _read_tabular(path: Path, text: str, columns: tuple[str, str, str | None], dialect: dict) -> list[Example]:
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    try:
        header = [name.strip() for name in next(reader)]
        for column in columns:
            if column and column not in header:
                raise _missing_column(path, column, header)
            if column and header.count(column) > 1:
                raise _ambiguous_column(path, column, f"the header names it {header.count(column)} times")
        examples = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise UserError(
                    f"{path} line {reader.line_num}: {len(cells)} fields, but the header has {len(header)}"
                )
            examples.append(_example(path, reader.line_num, dict(zip(header, cells)), columns))
    except csv.Error as error:
        raise UserError(f"{path} line {reader.line_num} is not valid {path.suffix[1:].upper()}: {error}") from None
    return examples


class _Object(dict):
    """A JSON object that remembers every key as written (json keeps only the last of duplicates)."""

    keys_seen: list[str]


def _pairs(pairs: list[tuple[str, object]]) -> _Object:
    row = _Object(pairs)
    row.keys_seen = [key for key, _ in pairs]
    return row


def _read_jsonl(path: Path, text: str, columns: tuple[str, str, str | None]) -> list[Example]:
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_pairs)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path} line {number} is not a JSON object")
        for column in columns:
            if column and column not in row:
                raise _missing_column(path, column, row, where=f" line {number}")
            if column and row.keys_seen.count(column) > 1:
                raise _ambiguous_column(path, column, f"the object names it {row.keys_seen.count(column)} times",
                                        where=f" line {number}")
        examples.append(_example(path, number, row, columns))
    return examples


def load_file(
    path,
    text_col: str,
    label_col: str,
    seed: int = 0,
    text_pair_col: str | None = None,
    limit: int | None = None,
    test_path=None,
) -> TaskData:
    """Load a user's labelled file and split it like a packaged task.

    ``.csv`` (CSV quoting), ``.tsv``/``.tab`` (GLUE-style, header row, no
    quoting) or ``.jsonl`` (one JSON object per line). ``text_pair_col``
    names the second sentence of pair tasks such as MRPC or MNLI.

    With ``test_path`` (e.g. GLUE's dev.tsv beside train.tsv) that file is the
    test part, as an official split: val is carved from ``path`` alone.
    The TaskData's recipe names the files (absolute) with their sha256.
    """
    columns = (text_col, label_col, text_pair_col)
    path = Path(path).absolute()
    examples, sha = _read(path, columns)
    recipe = {"file": str(path), "sha256": sha, "text_col": text_col, "label_col": label_col,
              "pair_col": text_pair_col, "test_file": None, "test_sha256": None}
    if test_path is None:
        data = split_80_10_10(path.stem, str(path), examples, seed, limit)
    else:
        test_path = Path(test_path).absolute()
        test, recipe["test_sha256"] = _read(test_path, columns)
        recipe["test_file"] = str(test_path)
        data = split_official(path.stem, f"{path} (test: {test_path})", examples, test, seed, limit)
    data.recipe = recipe
    return data


def load_file_again(recipe: dict, seed: int) -> TaskData:
    """The data set of a `--data` run (its recipe), split as it was; a file that
    changed since (sha256) is refused, as its split would not be the run's."""
    for file, recorded in ((recipe["file"], recipe["sha256"]), (recipe["test_file"], recipe["test_sha256"])):
        if file is not None and (sha := _read_utf8(Path(file))[1]) != recorded:
            raise UserError(f"{file} changed since the run was trained on it (sha256 {sha[:12]}..., was "
                            f"{recorded[:12]}...), so its split would differ: restore that file or train again")
    return load_file(recipe["file"], recipe["text_col"], recipe["label_col"], seed=seed,
                     text_pair_col=recipe["pair_col"], test_path=recipe["test_file"])


def read_examples(path: Path, columns: tuple[str, str, str | None]) -> list[Example]:
    return _read(path, columns)[0]


def _read(path: Path, columns: tuple[str, str, str | None]) -> tuple[list[Example], str]:
    """The file's examples and the sha256 of the bytes they were read from."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise UserError(
            f"unsupported data file type {suffix or '(no extension)'!r} for {path}; "
            f"use one of: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    text, sha = _read_utf8(path)
    if suffix == ".jsonl":
        examples = _read_jsonl(path, text, columns)
    else:
        examples = _read_tabular(path, text, columns, _TABULAR[suffix])
    if not examples:
        raise UserError(f"{path} has no data rows")
    return examples, sha
