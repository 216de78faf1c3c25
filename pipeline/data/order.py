"""Seeded orders that are the same on every platform and library version (a sha256 of seed and key)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any


def hash_key(seed: int, key: str) -> str:
    """Hex sha256 of ``seed`` and ``key``: the sort key of :func:`hash_order`."""
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def hash_order(items: Sequence[Any] | range, key: Callable[[Any], str], seed: int) -> list[Any]:
    """``items`` ordered by a seeded sha256 of ``key(item)``: platform- and library-independent."""
    return sorted(items, key=lambda it: hash_key(seed, key(it)))
