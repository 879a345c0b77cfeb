"""tracer.stdio: the script's prints go to stderr while stdout carries the result."""

import io
import os
import subprocess
import sys
from pathlib import Path

from tracer.stdio import KeptOpen, descriptor_1_to_stderr, is_stdout, prints_to_stderr

ROOT = Path(__file__).resolve().parent.parent.parent


def test_kept_open_writes_through_and_survives_close():
    stream = io.StringIO()
    kept = KeptOpen(stream)
    kept.write("hi")
    kept.close()
    assert not kept.closed and not stream.closed and stream.getvalue() == "hi"


def test_prints_and_descriptor_1_go_to_stderr(capfd):
    with prints_to_stderr():
        print("printed")
        os.write(1, b"written to fd 1\n")
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == "printed\nwritten to fd 1\n"


def test_descriptor_1_is_restored_after_an_error(capfd):
    try:
        with descriptor_1_to_stderr():
            raise ValueError
    except ValueError:
        pass
    os.write(1, b"back\n")
    assert capfd.readouterr().out == "back\n"


def test_is_stdout_knows_dash_and_plain_files(tmp_path):
    assert is_stdout("-") and not is_stdout(None) and not is_stdout(tmp_path / "g.svg")


def test_stdout_to_stderr_keeps_a_finished_result_whole():
    code = ("import atexit; from tracer import stdio; atexit.register(print, 'at exit'); print('result'); "
            "stdio.stdout_to_stderr(); import os; os.write(1, b'fd 1\\n'); print('late')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout == "result\n" and done.stderr == "fd 1\nlate\nat exit\n"


def test_silence_stdout_sends_the_rest_nowhere():
    code = "import os; from tracer import stdio; print('kept', flush=True); stdio.silence_stdout(); print('gone')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout == "kept\n"
