"""The BPE tokenizer (embbert.tokenizer)."""

import hashlib
import json
import string

import pytest
from tokenizers import Tokenizer, models

import embbert.data
from embbert import tokenizer as tokenizer_module
from embbert.errors import UserError
from embbert.tokenizer import (
    CLS_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    cache_dir,
    default_tokenizer,
    encode,
    load_tokenizer,
    sha256_file,
    train_tokenizer,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A café serves naive visitors; résumés are read there!",
    "Tokenizers split words into pieces, and pieces into characters.",
    "Numbers like 3.14 and 2024 appear in text (sometimes in brackets).",
] * 20


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, vocab_size=300)


def test_specials_at_fixed_ids(tok):
    assert [tok.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert tok.get_vocab_size() <= 300  # the tiny corpus runs out of merges first


def test_training_is_deterministic():
    first, second = (train_tokenizer(CORPUS, vocab_size=300).to_str() for _ in range(2))
    assert first == second


def test_normalization_lowercases_strips_accents_and_non_ascii(tok):
    assert tok.encode("Café NAÏVE").ids == tok.encode("cafe naive").ids
    # one space per character outside printable ASCII: Æ, ø, 東, 京, tab, ß
    assert tok.normalizer.normalize_str("Ærø 東京\tß ok") == " r       ok"
    assert tok.normalizer.normalize_str("Résumé\nÉTÉ") == "resume ete"


def test_every_ascii_character_is_known(tok):
    ids = tok.encode(string.printable, add_special_tokens=False).ids
    assert UNK_ID not in ids


def test_punctuation_is_isolated_and_continuations_are_marked(tok):
    tokens = tok.encode("dogs,fox!", add_special_tokens=False).tokens
    assert "," in tokens and "!" in tokens
    assert any(t.startswith("##") for t in tok.encode("zyxwv", add_special_tokens=False).tokens)


def test_encode_wraps_and_truncates(tok):
    ids = encode(tok, ["the fox", "the quick brown fox jumps over the lazy dog"], max_len=6)
    assert ids[0][0] == CLS_ID and ids[0][-1] == SEP_ID
    assert ids[0] == tok.encode("the fox").ids  # same layout as the saved post-processor
    assert len(ids[1]) == 6 and ids[1][0] == CLS_ID and ids[1][-1] == SEP_ID
    pair = encode(tok, ["the fox"], max_len=64, text_pairs=["a dog"])[0]
    assert pair == tok.encode("the fox", "a dog").ids
    assert pair.count(SEP_ID) == 2


def test_pair_truncation_matches_hf_longest_first(tok):
    reference = Tokenizer.from_str(tok.to_str())
    for a in range(8):
        for b in range(8):
            first, second = " ".join("a" * a), " ".join("b" * b)
            for max_len in range(3, 12):
                reference.enable_truncation(max_length=max_len)
                assert encode(tok, [first], max_len, [second])[0] == reference.encode(first, second).ids


def test_encode_rejects_too_short_max_len(tok):
    with pytest.raises(UserError, match="max length 2 is too short"):
        encode(tok, ["a"], max_len=2, text_pairs=["b"])


def test_vocab_too_small():
    with pytest.raises(UserError, match="vocab size 50 is too small"):
        train_tokenizer(CORPUS, vocab_size=50)


def test_save_and_load_round_trip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(str(path))
    assert load_tokenizer(path).to_str() == tok.to_str()


def test_load_tokenizer_errors(tok, tmp_path):
    with pytest.raises(UserError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "missing.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"model": ')
    with pytest.raises(UserError, match="is not a valid tokenizer JSON"):
        load_tokenizer(corrupt)
    swapped = json.loads(tok.to_str())
    vocab = swapped["model"]["vocab"]
    vocab["[PAD]"], vocab["[UNK]"] = vocab["[UNK]"], vocab["[PAD]"]
    wrong = tmp_path / "wrong.json"
    Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]")).save(str(wrong))
    with pytest.raises(UserError, match=r"special token \[PAD\] must have id 0, has 1"):
        load_tokenizer(wrong)


def test_load_tokenizer_clears_saved_truncation(tok, tmp_path):
    truncating = Tokenizer.from_str(tok.to_str())
    truncating.enable_truncation(max_length=3)
    path = tmp_path / "truncating.json"
    truncating.save(str(path))
    assert len(encode(load_tokenizer(path), ["the quick brown fox"], max_len=64)[0]) > 3


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBBERT_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("EMBBERT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "embbert"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "embbert"


def test_default_tokenizer_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBBERT_CACHE", str(tmp_path))
    monkeypatch.setattr(tokenizer_module, "pretraining_texts", lambda limit_chars: CORPUS)
    tok, path = default_tokenizer(vocab_size=300, limit_chars=1000)
    assert path.parent == tmp_path / "tokenizers" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left

    def no_training(limit_chars):
        raise AssertionError("the cached tokenizer should have been reused")

    monkeypatch.setattr(tokenizer_module, "pretraining_texts", no_training)
    again, again_path = default_tokenizer(vocab_size=300, limit_chars=1000)
    assert again_path == path and again.to_str() == tok.to_str()
    other_key = tokenizer_module._default_key(vocab_size=300, limit_chars=2000)
    assert other_key not in path.name


def test_sha256_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"embbert" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"embbert" * 1000).hexdigest()


@pytest.mark.slow
def test_default_tokenizer_on_the_full_corpus(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBBERT_CACHE", str(tmp_path))
    tok, _ = default_tokenizer()
    assert tok.get_vocab_size() == 8192
    texts = [e.text for e in embbert.data.load_task("sms_spam").train[:500]]
    assert not any(UNK_ID in ids for ids in encode(tok, texts, max_len=128))
