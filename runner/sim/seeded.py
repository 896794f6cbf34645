"""Deterministic draws from the simulator's seed: the same seed and parts always give the same value."""

from __future__ import annotations

import hashlib


def _digest(seed: int, parts: tuple[object, ...], size: int) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, (seed, *parts))).encode(), digest_size=size).digest()


def unit(seed: int, *parts: object) -> float:
    """A number in [0, 1)."""
    return int.from_bytes(_digest(seed, parts, 8), "big") / 2**64


def hexid(seed: int, *parts: object, n: int = 24) -> str:
    """`n` hex digits (at most 32), for ids and URL tokens."""
    return _digest(seed, parts, 16).hex()[:n]
