"""tracer.frames_dir: the --frames directory made before the run, old frames replaced by the new set."""

import pytest

from tests.tracer.builders import seed_trace
from tracer import frames_dir
from tracer.errors import NotATraceError, OutputError


def test_frame_names_and_an_output_among_the_frames(tmp_path):
    assert frames_dir.is_frame_name("step-007.svg") and not frames_dir.is_frame_name("step-007.svg.bak")
    assert not frames_dir.is_frame_name("graph.svg")
    assert frames_dir.is_a_frame_in(tmp_path / "fr" / "step-000.svg", tmp_path / "fr")
    assert not frames_dir.is_a_frame_in(tmp_path / "fr" / "graph.svg", tmp_path / "fr")
    assert not frames_dir.is_a_frame_in(tmp_path / "step-000.svg", tmp_path / "fr")


def test_prepare_makes_the_directory_once_and_refuses_a_file_or_missing_parent(tmp_path):
    target = tmp_path / "fr"
    assert frames_dir.prepare(target) is True and target.is_dir()
    assert frames_dir.prepare(target) is False
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        frames_dir.prepare(tmp_path / "file")
    with pytest.raises(OutputError, match=r"cannot make .*: .*file is a file, not a directory"):
        frames_dir.prepare(tmp_path / "file" / "sub" / "fr")
    with pytest.raises(OutputError, match=r"does not exist: create it first \(mkdir -p "):
        frames_dir.prepare(tmp_path / "no" / "fr")


def test_remove_if_empty_keeps_a_directory_with_files(tmp_path):
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "keep.txt").write_text("x")
    frames_dir.remove_if_empty(empty)
    frames_dir.remove_if_empty(full)
    assert not empty.exists() and (full / "keep.txt").exists()


def test_write_replaces_old_frames_and_says_how_many_went(tmp_path):
    target = tmp_path / "fr"
    target.mkdir()
    for name in ("step-000.svg", "step-098.svg", "step-099.svg", "notes.txt"):
        (target / name).write_text("old")
    assert not frames_dir.holds_frames(tmp_path)
    message = frames_dir.write(seed_trace(), target, created=False)
    steps = len(list(target.glob("step-*.svg"))) - 1
    assert message == (f"wrote {steps + 1} frames to {target}: before backward, and {steps} steps "
                       f"(removed 2 old frames)")
    assert (target / "notes.txt").read_text() == "old" and frames_dir.holds_frames(target)


def test_a_failed_write_removes_a_directory_made_for_it(tmp_path):
    target = tmp_path / "fr"
    created = frames_dir.prepare(target)
    with pytest.raises(NotATraceError):
        frames_dir.write("not a trace", target, created)
    assert not target.exists()
