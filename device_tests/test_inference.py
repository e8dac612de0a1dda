"""The model on the board against the host: INFER_IDS logits against host
TFLite-Micro (the device's bit-exact reference), CLASSIFY accuracy against
host int8 accuracy on the same sentences."""

import random

import pytest

from embbert.convert.parity import artifact_micro_logits
from embbert.tokenizer import encode


def _real_sequences(task_sample, host_tokenizer, L):
    seqs = encode(host_tokenizer, [e.text for e in task_sample], L)
    longest = max(seqs, key=len)
    seqs.append(longest[:-1] + [5] * (L - len(longest)) + [4])  # one input of exactly L ids
    return seqs


def test_infer_ids_matches_host_tflite_micro(device, info, art_dir, task_sample, host_tokenizer, figures):
    """Every logit equal to host TFLite-Micro's (full length L), on a full-length
    build and on a length-aware one (only the real tokens computed; padded keys
    enter each softmax in closed form, convert/exact_mask.py)."""
    L = info["max_len"]
    seqs = _real_sequences(task_sample, host_tokenizer, L)
    assert len(seqs[-1]) == L
    want = artifact_micro_logits(art_dir, seqs)
    got = [device.infer_ids(s) for s in seqs]
    assert [g["n_tokens"] for g in got] == [len(s) for s in seqs]
    assert all(g[info["counter"]] > 0 for g in got)
    logits = [g["logits"] for g in got]
    same = sum(g == w for g, w in zip(logits, want))
    mode = "full-length" if info["full_length"] else "length-aware"
    figures[f"INFER_IDS bit-exact vs host TFLite-Micro ({mode} build)"] = f"{same}/{len(seqs)}"
    figures[f"INFER_IDS {info['counter']} per inference of L = {L} ids"] = f"{got[-1][info['counter']]:,}"
    assert len({tuple(w) for w in want}) > 1 or len(seqs) < 5  # the inputs really differ
    diff = [(i, g, w) for i, (g, w) in enumerate(zip(logits, want)) if g != w]
    assert not diff, f"{len(diff)} of {len(seqs)} not bit-exact ({mode}); first (index, board, host): {diff[0]}"


def test_infer_ids_random_ids_full_length(device, info, art_dir):
    """Ids no sentence would give, at the shortest, odd and longest lengths."""
    rng = random.Random(11)
    L, vocab = info["max_len"], info["vocab_size"]
    seqs = [[2] + [rng.randrange(5, vocab) for _ in range(n - 2)] + [4] for n in (2, 3, 17, L // 2 + 1, L)]
    assert [device.infer_ids(s)["logits"] for s in seqs] == artifact_micro_logits(art_dir, seqs)


def _accuracy_check(device, info, reference, task_name, examples, figures):
    """CLASSIFY each example; the board's accuracy and every logit must equal
    host int8's on the same sentences (full-length and length-aware builds)."""
    if task_name is None:
        pytest.skip("the model's labels are not a built-in task's; use `embbert eval --data` for its own data")
    rows = []
    for example in examples:
        got = device.classify(example.text)
        host = reference(example.text)
        rows.append((example.label, got, host))
        assert got["n_tokens"] == host["n_tokens"]
        assert got["label"] == info["labels"][got["label_index"]]
        assert got[info["counter"]] > 0 and got["tokenize_" + info["counter"]] > 0
    device_acc = sum(got["label"] == gold for gold, got, _ in rows) / len(rows)
    host_acc = sum(host["host_label"] == gold for gold, _, host in rows) / len(rows)
    figures[f"CLASSIFY accuracy on {len(rows)} {task_name} test sentences"] = (
        f"board {device_acc:.2%}, host int8 {host_acc:.2%}")
    assert device_acc == host_acc, (device_acc, host_acc)
    assert [got["logits"] for _, got, _ in rows] == [host["host_logits"] for _, _, host in rows]


def test_classify_accuracy_equals_host_int8(device, info, reference, task_name, task_sample, figures):
    _accuracy_check(device, info, reference, task_name, task_sample, figures)


@pytest.mark.slow
def test_classify_whole_test_split(device, info, reference, task_name, figures):
    """The artifact's whole test split (minutes on a real-size model; `embbert
    eval` does the same with latency, resume and a report)."""
    from embbert.data import load_task

    examples = load_task(task_name).test if task_name else []
    _accuracy_check(device, info, reference, task_name, examples, figures)
