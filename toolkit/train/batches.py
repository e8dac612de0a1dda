"""Deterministic batches: step s of a run always sees the same data.

The order of epoch e is a permutation drawn from (seed, e), and every random
choice inside a step (MLM masking) from (seed, step). So a run resumed at step
s continues with exactly the batches an uninterrupted run would have seen.
"""

import torch

from ..tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID

FIRST_WORD_ID = 5  # ids 0..4 are the special tokens


def generator(seed: int, *stream: int) -> torch.Generator:
    """An independent RNG for (seed, stream...): no global state involved."""
    g = torch.Generator()
    key = seed
    for s in stream:
        key = (key * 1_000_003 + s) % (2**63 - 1)
    g.manual_seed(key)
    return g


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Indices of the examples of `step`, epoch after epoch of seeded shuffles."""
    per_epoch = steps_per_epoch(n, batch_size)
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=generator(seed, epoch))
    return order[k * batch_size : (k + 1) * batch_size]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def pad(seqs: list[list[int]]) -> torch.Tensor:
    """Right-pad with [PAD] to the longest sequence: (B, T) int64."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def mask_tokens(ids: torch.Tensor, vocab_size: int, g: torch.Generator, rate: float = 0.15):
    """BERT masking: pick `rate` of the word tokens; of those 80 % -> [MASK],
    10 % -> a random word, 10 % unchanged. Returns (inputs, targets), with
    targets = -100 where no prediction is asked."""
    words = ids >= FIRST_WORD_ID
    picked = (torch.rand(ids.shape, generator=g) < rate) & words
    targets = torch.where(picked, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=g)
    inputs = ids.clone()
    inputs[picked & (roll < 0.8)] = MASK_ID
    randomize = picked & (roll >= 0.8) & (roll < 0.9)
    inputs[randomize] = torch.randint(FIRST_WORD_ID, vocab_size, ids.shape, generator=g)[randomize]
    return inputs, targets


def chunk_documents(docs: list[list[int]], max_len: int) -> list[list[int]]:
    """Pack tokenized documents into [CLS] ... [SEP] sequences of at most max_len.

    Documents are concatenated in order and cut into windows, so no token is
    wasted on padding; a long document spans several windows.
    """
    body = max_len - 2
    stream = [t for d in docs for t in d]
    return [[CLS_ID, *stream[i : i + body], SEP_ID] for i in range(0, len(stream), body)]
