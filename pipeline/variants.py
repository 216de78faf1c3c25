"""Names of the checkpoints a profile probes: ``base`` and one fine-tuned checkpoint per (task, seed).

A *variant* is ``base`` or a sentence task the base model is fine-tuned on (``params.variants``). Each
fine-tuned variant is trained once per fine-tuning seed (``params.finetune.seeds``), and every seed's model
is probed: its *checkpoint* name is ``<task>-seed<N>`` (``sentiment-seed42``). Checkpoint names are the
folder names under ``models/<model>/``, ``activations/<model>/`` and ``results/{layers,neurons}/<model>/``,
and the ``variant`` field of those results. Analyses group the checkpoints of one variant with
:func:`variant_of` and average over their seeds.

A name without the suffix is a variant with one unnamed seed: a *user-supplied* variant (a fine-tuned
checkpoint the user registered under ``model_sources.MODEL.variants``, probed without the finetune stage, so
its checkpoint name is the variant name itself), a result written before fine-tuning seeds, or a test fixture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

BASE = "base"
_SEEDED = re.compile(r"^(?P<variant>.+)-seed(?P<seed>\d+)$")


def checkpoint(variant: str, seed: int) -> str:
    """The checkpoint name of fine-tuned ``variant`` trained with ``seed`` (``sentiment``, 42 ->
    ``sentiment-seed42``)."""
    if variant == BASE:
        raise ValueError("the base model has no fine-tuning seed")
    if seed < 0:
        raise ValueError(f"fine-tuning seed {seed} is negative")
    return f"{variant}-seed{seed}"


def parse(name: str) -> tuple[str, int | None]:
    """``(variant, seed)`` of checkpoint ``name``; the seed is None for ``base`` and for unsuffixed names."""
    m = _SEEDED.match(name)
    return (m["variant"], int(m["seed"])) if m and name != BASE else (name, None)


def variant_of(name: str) -> str:
    """The variant a checkpoint belongs to (``sentiment-seed42`` -> ``sentiment``; ``base`` -> ``base``)."""
    return parse(name)[0]


def seed_of(name: str) -> int | None:
    """The fine-tuning seed of a checkpoint, or None (``base``, unsuffixed names)."""
    return parse(name)[1]


def checkpoints(variants: Sequence[str], seeds: Sequence[int], supplied: Sequence[str] = ()) -> list[str]:
    """Every checkpoint of ``variants`` under fine-tuning ``seeds``, in list order: ``base`` and the user-supplied
    variants (``supplied``) as they are, each fine-tuned variant once per seed (``[base, sentiment, mine]``,
    ``[42, 43]``, ``[mine]`` -> ``[base, sentiment-seed42, sentiment-seed43, mine]``)."""
    fixed = {BASE, *supplied}
    return [v if v in fixed else checkpoint(v, s) for v in variants for s in ([None] if v in fixed else seeds)]


def group(names: Iterable[str]) -> dict[str, list[str]]:
    """Checkpoint names grouped by variant, ``base`` first then by name; each group's names in seed order."""
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(variant_of(n), []).append(n)
    return {v: sorted(ns, key=lambda n: (seed_of(n) is not None, seed_of(n) or 0, n))
            for v, ns in sorted(out.items(), key=lambda kv: (kv[0] != BASE, kv[0]))}
