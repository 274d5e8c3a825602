"""The local-directory sink resolves every file path (symlinks followed) and writes nothing outside
the destination's directory or the workers' local root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditstream.config.destinations import LocalDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError
from auditstream.sinks.local_dir import LocalDirectorySink
from tests.factories import make_event


def _batch(account_id: str = "acme") -> Batch:
    batch = Batch("l", account_id, "auditstream.dest.l", 0)
    batch.records.append(Record(batch.topic, 0, 0, account_id.encode(), b""))
    batch.events.append(make_event())
    return batch


def _sink(root: Path | None, path: str, prefix: str = "audit") -> LocalDirectorySink:
    # model_construct: what an older or hand-written settings record could hold
    destination = LocalDestination.model_construct(
        id="l",
        type="local",
        path=path,
        prefix=prefix,
        format="ndjson",
        compression="none",
    )
    return LocalDirectorySink(destination, root=root)


def _files(where: Path) -> set[Path]:
    return {p for p in where.rglob("*") if p.is_file()}


def test_an_ordinary_write_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    sink = _sink(root, "acme")
    sink.write(_batch())
    written = _files(tmp_path)
    assert len(written) == 1
    assert next(iter(written)).is_relative_to(root / "acme" / "audit")
    assert sink.probe().ok


@pytest.mark.parametrize(
    ("path", "prefix", "account_id"),
    [
        ("../escaped", "audit", "acme"),
        ("acme/../../escaped", "audit", "acme"),
        ("acme", "../../escaped", "acme"),
        ("acme", "/../../escaped", "acme"),
    ],
)
def test_climbing_out_is_refused(tmp_path: Path, path: str, prefix: str, account_id: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sink = _sink(root, path, prefix)
    with pytest.raises(PermanentError) as caught:
        sink.write(_batch(account_id))
    assert caught.value.cause == "path_outside_root"
    assert _files(tmp_path) == set()
    result = sink.probe()
    assert result.ok is False
    assert result.cause == "path_outside_root"
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("account_id", ["../../../../escaped", "..", "/etc"])
def test_an_account_id_never_adds_a_path_level(tmp_path: Path, account_id: str) -> None:
    root = tmp_path / "root"
    _sink(root, "acme").write(_batch(account_id))
    (written,) = _files(tmp_path)
    assert written.is_relative_to(root / "acme" / "audit")


def test_an_absolute_path_outside_the_local_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sink = _sink(root, str(tmp_path / "elsewhere"))
    with pytest.raises(PermanentError) as caught:
        sink.write(_batch())
    assert caught.value.cause == "path_outside_root"
    assert _files(tmp_path) == set()
    inside = _sink(root, str(root / "acme"))
    inside.write(_batch())
    assert len(_files(root)) == 1


def test_an_absolute_path_without_a_local_root_is_its_own_root(tmp_path: Path) -> None:
    sink = _sink(None, str(tmp_path / "acme"))
    sink.write(_batch())
    assert len(_files(tmp_path / "acme")) == 1
    with pytest.raises(PermanentError):
        _sink(None, str(tmp_path / "acme"), prefix="../x").write(_batch())


@pytest.mark.parametrize("link_at", ["acme", "acme/audit"])
def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, link_at: str) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    link = root / link_at
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    with pytest.raises(PermanentError) as caught:
        _sink(root, "acme").write(_batch())
    assert caught.value.cause == "path_outside_root"
    assert _files(outside) == set()


def test_a_symlinked_object_file_is_not_followed_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    sink = _sink(root, "acme")
    sink.write(_batch())
    (written,) = _files(root)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    written.unlink()
    os.symlink(victim, written)
    with pytest.raises(PermanentError) as caught:
        sink.write(_batch())
    assert caught.value.cause == "path_outside_root"
    assert victim.read_text() == "keep"


def test_a_symlink_inside_the_root_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink(root / "real", root / "acme")
    _sink(root, "acme").write(_batch())
    assert len(_files(root / "real")) == 1


@pytest.mark.parametrize("path", ["acme\0x", "acme/\0"])
def test_a_path_that_cannot_be_resolved_is_refused_not_a_crash(tmp_path: Path, path: str) -> None:
    sink = _sink(tmp_path, path)
    with pytest.raises(PermanentError) as caught:
        sink.write(_batch())
    assert caught.value.cause == "invalid_path"
    result = sink.probe()
    assert result.ok is False
    assert result.cause == "invalid_path"
