"""C++ tables for the on-device tokenizer, generated from a tokenizer.json.

The device never sees a string of the vocabulary: BPE only needs the id of
each single character (as a word start and as a ``##`` continuation) and the
merge table, keyed by the pair of ids. Normalization needs, for every code
point above U+007F, what the tokenizer's own normalizer turns it into.

That last table is computed by running the tokenizer's normalizer (the Rust
one inside HF ``tokenizers``) on every code point, not from Python's
``unicodedata``: the two use different Unicode versions (315 code points of
Unicode 14 are combining marks to Python but not to ``tokenizers`` 0.23.3),
and parity with HF is what counts. Per code point, the result is a drop (a
combining mark), a single ASCII character, or only spaces; runs of spaces are
kept as one, which cannot change the ids because pre-tokenization splits on
any run of spaces. Normalizing a text code point by code point is exact:
NFD's canonical reordering only moves combining marks past each other, and
every mark becomes nothing or a space. See firmware/TOKENIZER.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from embbert.errors import UserError

# What the C++ port implements; any other tokenizer.json is refused, loudly.
EXPECTED_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "NFD"},
        {"type": "StripAccents"},
        {"type": "Replace", "pattern": {"Regex": "[^\\x20-\\x7E]"}, "content": " "},
        {"type": "Lowercase"},
    ],
}
EXPECTED_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}],
}
NORM_DROP = 0  # value of a normalization run whose code points vanish
NORM_SPACE = 0x20
NO_ID = 0xFFFF  # a character without a vocabulary entry (becomes [UNK], as in HF)


@dataclass(frozen=True)
class Tables:
    """Everything the C++ tokenizer needs, as plain integers."""

    sha256: str  # of the tokenizer.json bytes
    vocab_size: int
    unk_id: int
    cls_id: int
    sep_id: int
    initial_ids: list[int]  # [128]: id of ASCII char c at a word start, or NO_ID
    continuation_ids: list[int]  # [128]: id of "##c", or NO_ID
    merge_keys: list[int]  # sorted (a << 16) | b
    merge_ids: list[int]  # id of the merged piece; also its priority (see _merges)
    norm_runs: list[int]  # sorted (first code point << 8) | value, from U+0080 on


def _check_config(spec: dict, path: Path) -> dict:
    model = spec.get("model") or {}
    problems = []
    if spec.get("normalizer") != EXPECTED_NORMALIZER:
        problems.append(f"normalizer {json.dumps(spec.get('normalizer'))}")
    if spec.get("pre_tokenizer") != EXPECTED_PRE_TOKENIZER:
        problems.append(f"pre_tokenizer {json.dumps(spec.get('pre_tokenizer'))}")
    expected_model = {"type": "BPE", "dropout": None, "continuing_subword_prefix": "##", "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}
    for key, value in expected_model.items():
        if model.get(key, value) != value:
            problems.append(f"model.{key} = {model.get(key)!r} (the device implements {value!r})")
    if problems:
        raise UserError(f"tokenizer {path} cannot run on the device: unsupported " + "; ".join(problems))
    return model


def _merges(model: dict, vocab: dict[str, int], path: Path) -> tuple[list[int], list[int]]:
    """(a << 16 | b) -> merged id, sorted by key.

    HF applies the merge of lowest rank first. A trained BPE appends each
    merged piece to the vocabulary in rank order, so the merged id rises with
    the rank and can stand for it: that saves a 16 kB rank table in flash.
    The generator checks the property instead of assuming it.
    """
    pairs = []
    last_id = -1
    for rank, merge in enumerate(model["merges"]):
        a, b = merge if isinstance(merge, list) else merge.split(" ")
        new_token = a + b[len("##"):]  # what tokenizers' BPE builder does
        ids = [vocab.get(t) for t in (a, b, new_token)]
        if None in ids:
            raise UserError(f"tokenizer {path}: merge {rank} ({a} {b}) uses a piece missing from the vocabulary")
        if ids[2] <= last_id:
            raise UserError(f"tokenizer {path}: merged ids do not rise with the merge rank (merge {rank}: {a} {b}); "
                            "the device tokenizer needs a BPE trained by tokenizers' BpeTrainer")
        last_id = ids[2]
        pairs.append(((ids[0] << 16) | ids[1], ids[2]))
    pairs.sort()
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise UserError(f"tokenizer {path}: the same pair is merged twice")
    return keys, [v for _, v in pairs]


def norm_value(normalized: str) -> int:
    """One code point's normalized form as a table value."""
    if normalized == "":
        return NORM_DROP
    if normalized.strip(" ") == "":
        return NORM_SPACE
    if len(normalized) == 1 and 0x21 <= ord(normalized) <= 0x7E:
        return ord(normalized)
    raise UserError(f"normalization gives {normalized!r} for one code point; the device table cannot express it")


def _norm_runs(tok) -> list[int]:
    runs, previous = [], None
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp < 0xE000:
            value = NORM_SPACE  # surrogates: UTF-8 cannot carry them; the device rejects them before the table
        else:
            value = norm_value(tok.normalizer.normalize_str(chr(cp)))
        if value != previous:
            runs.append((cp << 8) | value)
            previous = value
    return runs


def build_tables(tokenizer_json) -> Tables:
    """Read and check a tokenizer.json; compute the device tables (~2 s)."""
    from tokenizers import Tokenizer

    path = Path(tokenizer_json)
    try:
        raw = path.read_bytes()
        spec = json.loads(raw)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read tokenizer {path}: {error}") from None
    model = _check_config(spec, path)
    vocab: dict[str, int] = model["vocab"]
    if max(vocab.values()) >= NO_ID:
        raise UserError(f"tokenizer {path}: {len(vocab)} ids do not fit the device's 16-bit ids")
    tok = Tokenizer.from_str(raw.decode())
    specials = {t: tok.token_to_id(t) for t in ("[UNK]", "[CLS]", "[SEP]")}
    if None in specials.values():
        raise UserError(f"tokenizer {path}: needs [UNK], [CLS] and [SEP]; has {specials}")
    keys, ids = _merges(model, vocab, path)
    return Tables(
        sha256=hashlib.sha256(raw).hexdigest(),
        vocab_size=tok.get_vocab_size(),
        unk_id=specials["[UNK]"], cls_id=specials["[CLS]"], sep_id=specials["[SEP]"],
        initial_ids=[vocab.get(chr(c), NO_ID) for c in range(128)],
        continuation_ids=[vocab.get("##" + chr(c), NO_ID) for c in range(128)],
        merge_keys=keys, merge_ids=ids,
        norm_runs=_norm_runs(tok),
    )


def _array(ctype: str, name: str, values: list[int], per_line: int = 12) -> str:
    width = 8 if ctype == "uint32_t" else 4
    lines = [", ".join(f"0x{v:0{width}x}" for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    body = ",\n    ".join(lines)
    return f"extern const {ctype} {name}[{len(values)}] = {{\n    {body}\n}};\n"


def render_cc(tables: Tables) -> str:
    """The tables as one C++ file (definitions for firmware/src/tokenizer_tables.h)."""
    t = tables
    return "\n".join([
        f"// Generated by embbert.device.tokenizer_tables from tokenizer.json (sha256 {t.sha256}).",
        "// Do not edit; regenerate with `embbert build`.",
        '#include "tokenizer_tables.h"',
        "",
        "namespace embbert {",
        "namespace tables {",
        "",
        f'extern const char kTokenizerSha256[] = "{t.sha256}";',
        f"extern const uint16_t kVocabSize = {t.vocab_size};",
        f"extern const uint16_t kUnkId = {t.unk_id};",
        f"extern const uint16_t kClsId = {t.cls_id};",
        f"extern const uint16_t kSepId = {t.sep_id};",
        f"extern const uint32_t kMergeCount = {len(t.merge_keys)};",
        f"extern const uint32_t kNormRunCount = {len(t.norm_runs)};",
        "",
        _array("uint16_t", "kInitialIds", t.initial_ids),
        _array("uint16_t", "kContinuationIds", t.continuation_ids),
        _array("uint32_t", "kMergeKeys", t.merge_keys),
        _array("uint16_t", "kMergeIds", t.merge_ids),
        _array("uint32_t", "kNormRuns", t.norm_runs),
        "}  // namespace tables",
        "}  // namespace embbert",
        "",
    ])


def write_tables(tokenizer_json, out_dir) -> Tables:
    """Generate ``out_dir/tokenizer_tables.cc``; return the tables."""
    tables = build_tables(tokenizer_json)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer_tables.cc").write_text(render_cc(tables))
    return tables


def flash_bytes(tables: Tables) -> int:
    """Bytes the tables take in flash (arrays only)."""
    return 2 * 128 * 2 + 4 * len(tables.merge_keys) + 2 * len(tables.merge_ids) + 4 * len(tables.norm_runs)
