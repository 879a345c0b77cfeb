"""tracer.output: atomic writes that never clobber a link, a pipe or a device."""

import os
import stat
import threading

import pytest

import tracer
from tracer.errors import OutputError
from tracer.output import check_writable, write_atomic


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "g.dot"
    target.write_text("old")
    target.chmod(0o640)
    assert write_atomic(target, "new") == target
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]  # no temporary file left


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.dot"
    real.write_text("OLD")
    link = tmp_path / "link.dot"
    link.symlink_to(real)
    assert write_atomic(link, "NEW") == link
    assert link.is_symlink() and real.read_text() == "NEW"


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "link.svg"
    link.symlink_to(tmp_path / "made.svg")
    write_atomic(link, "<svg/>")
    assert link.is_symlink() and (tmp_path / "made.svg").read_text() == "<svg/>"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_written_to_not_replaced(tmp_path):
    pipe = tmp_path / "p.dot"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    write_atomic(pipe, "digraph {}")
    reader.join(timeout=10)  # a daemon: if the pipe was replaced, the test fails and does not hang
    assert received == [b"digraph {}"]
    assert not pipe.is_file() and pipe.exists()  # still the pipe


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making a device needs root")
def test_a_device_is_written_to_not_replaced(tmp_path):
    device = tmp_path / "null"  # a private /dev/null: a regression must not clobber the real one
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write_atomic(device, b"x" * 10)
    assert stat.S_ISCHR(device.stat().st_mode)


def test_a_symlink_to_a_directory_is_a_clear_error(tmp_path):
    (tmp_path / "dir").mkdir()
    link = tmp_path / "out.svg"
    link.symlink_to(tmp_path / "dir")
    with pytest.raises(tracer.OutputError, match="is a directory: give a file name"):
        write_atomic(link, "x")


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="no /dev/fd here")
def test_a_shell_descriptor_is_appended_to_not_replaced(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("LOG LINE\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)  # what `>> log.txt` hands the program
    try:
        write_atomic(f"/dev/fd/{fd}", "digraph {}\n")
    finally:
        os.close(fd)
    assert log.read_text() == "LOG LINE\ndigraph {}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


def test_a_dangling_symlink_into_a_missing_directory_fails_the_early_check(tmp_path):
    from tracer.output import check_writable
    link = tmp_path / "out.svg"
    link.symlink_to(tmp_path / "nowhere" / "x.svg")
    with pytest.raises(tracer.OutputError, match="nowhere does not exist: create it first"):
        check_writable(link)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_whose_reader_left_raises_broken_pipe(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with pytest.raises(BrokenPipeError):
            write_atomic(f"/dev/fd/{write_end}", "x")
    finally:
        os.close(write_end)


@pytest.mark.skipif(not os.path.isdir("/proc/self/cwd"), reason="no /proc here")
def test_a_regular_file_reached_through_proc_is_replaced_not_appended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.dot").write_text("OLD CONTENT\n")
    write_atomic("/proc/self/cwd/g.dot", "digraph {}\n")
    assert (tmp_path / "g.dot").read_text() == "digraph {}\n"
    write_atomic("/proc/self/cwd/new.dot", "x")  # a new file through /proc is fine too
    assert (tmp_path / "new.dot").read_text() == "x"


def test_a_symlink_loop_is_a_clear_error_and_stays_as_it_was(tmp_path):
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    first.symlink_to(second)
    second.symlink_to(first)
    with pytest.raises(OutputError, match=r"a\.svg is a symbolic link that never reaches a file .*: remove it"):
        check_writable(first)
    with pytest.raises(OutputError, match="never reaches a file"):
        write_atomic(first, "<svg/>")
    assert first.is_symlink() and os.readlink(first) == str(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg", "b.svg"]


def test_a_named_pipe_nobody_reads_is_a_clear_error_not_a_hang(tmp_path, monkeypatch):
    import tracer.output as O
    monkeypatch.setattr(O, "PIPE_READER_WAIT", 0.2)
    pipe = tmp_path / "p.svg"
    os.mkfifo(pipe)
    with pytest.raises(OutputError, match=r"nothing is reading the pipe .*p\.svg: start its reader first"):
        write_atomic(pipe, "<svg/>")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_a_path_ending_in_a_slash_names_a_directory_and_is_refused(tmp_path):
    """Path("keep.svg/") is keep.svg: the file was replaced, and nodir/ made a file nodir."""
    kept = tmp_path / "keep.svg"
    kept.write_text("previous")
    with pytest.raises(OutputError, match=r"keep\.svg/ ends with a slash, so it names a directory: "
                                          r"leave out the slash to write the file .*keep\.svg"):
        check_writable(f"{kept}/")
    with pytest.raises(OutputError, match=r"give a file name, e\.g\. .*/graph\.svg"):
        check_writable(f"{tmp_path}/")
    assert kept.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.svg"]
