"""Small archives in the real formats the resource code reads, built in memory for tests."""

from __future__ import annotations

import io
import tarfile


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A gzipped tar holding ``members`` (name -> bytes), as an sdist or a nested tarball is."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
