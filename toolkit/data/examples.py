"""Labelled examples and the one way every data set is split.

All loaders (packaged tasks and user files) end here, so the rules hold for
every data set alike:

* exact duplicate texts are dropped before splitting (first one kept), so a
  text can never sit on both sides of a split;
* splits are stratified per label and depend only on the seed;
* no test text may appear in train or val; if one does, the splitter is
  broken, which is a bug, not a user error;
* ``labels`` come from the training part, and a val/test label that training
  never saw is a user error (the model could never predict it).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction

from embbert.errors import UserError


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    text_pair: str | None = None  # second sentence of GLUE-style pair tasks


@dataclass
class TaskData:
    name: str  # task name or file stem
    labels: list[str]  # sorted label names, taken from the training part
    train: list[Example]
    val: list[Example]
    test: list[Example]
    split_seed: int  # the seed the split was made with
    duplicates_removed: int  # exact duplicates and test leaks dropped
    source: str  # package + file, or the user's path
    # How to load this data set again (run.json "data", for `embbert convert`):
    # {"task": NAME}, or the user's file(s) with their sha256 and columns.
    recipe: dict | None = None


def text_key(text: str, text_pair: str | None = None) -> str:
    """Normalized identity of a text: whitespace collapsed, lowercased.

    Two examples with the same key count as the same text for dedup and for
    the leakage checks (also against the pretraining corpus).
    """
    key = " ".join(text.split()).lower()
    if text_pair is not None:
        key += "\t" + " ".join(text_pair.split()).lower()
    return key


def example_key(example: Example) -> str:
    return text_key(example.text, example.text_pair)


def drop_duplicates(examples: list[Example]) -> tuple[list[Example], int]:
    """Keep the first example of every key; return them and the number dropped."""
    seen: set[str] = set()
    kept = []
    for example in examples:
        key = example_key(example)
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept, len(examples) - len(kept)


def _take_stratified(
    examples: list[Example], fraction: Fraction, rng: random.Random
) -> tuple[list[Example], list[Example]]:
    """Draw round(fraction * n) examples of every label; return (taken, rest).

    Rounding is per label (half up), so a label with very few examples stays
    wholly in the rest, i.e. in training. Both lists keep the input order.
    """
    positions = defaultdict(list)
    for i, example in enumerate(examples):
        positions[example.label].append(i)
    taken_positions: set[int] = set()
    for label in sorted(positions):  # fixed order: the rng stream must not depend on dict order
        members = positions[label]
        rng.shuffle(members)
        count = int(fraction * len(members) + Fraction(1, 2))
        taken_positions.update(members[:count])
    taken = [e for i, e in enumerate(examples) if i in taken_positions]
    rest = [e for i, e in enumerate(examples) if i not in taken_positions]
    return taken, rest


def _quotas(counts: dict[str, int], limit: int) -> dict[str, int]:
    """Split ``limit`` over labels in proportion to ``counts`` (largest remainder).

    When the limit allows it every label keeps at least one example, so a
    short smoke run still trains on, and is tested on, every label.
    """
    base = {label: 0 for label in counts}
    if limit >= len(counts):
        base = {label: 1 for label in counts}
    spare = {label: n - base[label] for label, n in counts.items()}
    budget = limit - sum(base.values())
    total = sum(spare.values())
    shares = {label: Fraction(budget * n, total) for label, n in spare.items()}
    quotas = {label: base[label] + int(share) for label, share in shares.items()}
    leftover = limit - sum(quotas.values())
    by_remainder = sorted(counts, key=lambda label: (-(shares[label] % 1), label))
    for label in by_remainder[:leftover]:
        quotas[label] += 1
    return quotas


def _limit(examples: list[Example], limit: int | None) -> list[Example]:
    """Keep at most ``limit`` examples, label proportions kept, order kept."""
    if limit is None or len(examples) <= limit:
        return examples
    counts: dict[str, int] = defaultdict(int)
    for example in examples:
        counts[example.label] += 1
    quotas = _quotas(dict(counts), limit)
    kept = []
    for example in examples:
        if quotas[example.label] > 0:
            quotas[example.label] -= 1
            kept.append(example)
    return kept


def _require_two_labels(examples: list[Example], source: str) -> None:
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        found = f"only {labels[0]!r}" if labels else "none"
        raise UserError(f"{source} has fewer than 2 distinct labels ({found}); a classifier needs at least 2")


def _finish(
    name: str,
    source: str,
    seed: int,
    parts: dict[str, list[Example]],
    duplicates_removed: int,
    limit: int | None,
) -> TaskData:
    """Shuffle, check leakage, apply the limit, check labels, build TaskData."""
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1 example per split part, got {limit}")
    rng = random.Random(f"order:{seed}")
    for part in ("train", "val", "test"):
        # A seeded order makes a limited prefix representative and keeps
        # the file's grouping (e.g. by category or movie) out of training.
        rng.shuffle(parts[part])

    test_keys = {example_key(e) for e in parts["test"]}
    for part in ("train", "val"):
        if any(example_key(e) in test_keys for e in parts[part]):
            raise RuntimeError(f"bug: a test text of {name} leaked into {part} after splitting")

    train, val, test = (_limit(parts[p], limit) for p in ("train", "val", "test"))
    labels = sorted({e.label for e in train})
    for part, examples in (("val", val), ("test", test)):
        unseen = sorted({e.label for e in examples} - set(labels))
        if unseen:
            hint = f"limit={limit} keeps too few examples" if limit else "add training examples for it or remove it"
            raise UserError(f"label {unseen[0]!r} appears in {part} but never in training of {name} ({hint})")
    return TaskData(
        name=name,
        labels=labels,
        train=train,
        val=val,
        test=test,
        split_seed=seed,
        duplicates_removed=duplicates_removed,
        source=source,
    )


# The fewest rows of one label that give each part at least one: 10 % of 5
# rounds to 1 test row, and 1/9 of the 4 left rounds to 0 validation rows.
MIN_ROWS_80_10_10 = 6
MIN_ROWS_VAL = 5  # with an official test part: 10 % of 5 rounds to 1


def _require_parts(parts: dict[str, list[Example]], examples: list[Example], source: str, needed: int,
                   alternative: str) -> None:
    """An empty validation or test part gives no model choice or no result (NaN): refuse it."""
    empty = [name for part, name in (("val", "validation"), ("test", "test")) if not parts[part]]
    if empty:
        counts = Counter(e.label for e in examples)
        what = " and ".join(empty) + (" parts" if len(empty) > 1 else " part")
        raise UserError(
            f"{source} is too small to split: its {len(examples)} distinct rows over {len(counts)} labels (at most "
            f"{max(counts.values())} of one label) leave the {what} empty; the split takes 10 % of each label, so "
            f"at least one label needs {needed} rows{alternative}")


def split_80_10_10(
    name: str, source: str, examples: list[Example], seed: int, limit: int | None
) -> TaskData:
    """Dedup, then a seeded stratified 80/10/10 train/val/test split."""
    examples, duplicates = drop_duplicates(examples)
    _require_two_labels(examples, source)
    rng = random.Random(f"split:{seed}")
    test, rest = _take_stratified(examples, Fraction(1, 10), rng)
    val, train = _take_stratified(rest, Fraction(1, 9), rng)  # 1/9 of 90% = 10%
    parts = {"train": train, "val": val, "test": test}
    _require_parts(parts, examples, source, MIN_ROWS_80_10_10, " (or give your own test file, --test-data)")
    return _finish(name, source, seed, parts, duplicates, limit)


def split_official(
    name: str,
    source: str,
    train: list[Example],
    test: list[Example],
    seed: int,
    limit: int | None,
) -> TaskData:
    """Keep an official train/test split; carve a stratified 10% val from train.

    Duplicates within each part are dropped, and so is every training text
    that also appears in the official test part; both count as removed.
    """
    test, test_duplicates = drop_duplicates(test)
    train, train_duplicates = drop_duplicates(train)
    test_keys = {example_key(e) for e in test}
    unleaked = [e for e in train if example_key(e) not in test_keys]
    removed = test_duplicates + train_duplicates + len(train) - len(unleaked)
    _require_two_labels(unleaked, source)
    val, train = _take_stratified(unleaked, Fraction(1, 10), random.Random(f"split:{seed}"))
    parts = {"train": train, "val": val, "test": test}
    _require_parts(parts, unleaked, source, MIN_ROWS_VAL, " for the validation part")
    return _finish(name, source, seed, parts, removed, limit)
