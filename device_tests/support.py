"""Helpers shared by the device tests."""

import random


def sample(items: list, k: int, seed: str) -> list:
    """A fixed sample of ``k`` items (the same on every run), in their order."""
    if len(items) <= k:
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in picked]
