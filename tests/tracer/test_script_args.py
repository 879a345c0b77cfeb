"""tracer.script_args: arguments on the wrong side of SCRIPT, found without click."""

from tracer.script_args import (before_dashes, dashed_script, dashed_script_message, misplaced_option,
                                mixed_cluster, names_itself, option_like, read_text)

TAKES_VALUE = {"-o", "--output", "--pass"}
SHORT = {"-o", "-q", "-h", "-f"}


def test_before_dashes():
    assert before_dashes(["a.py", "--", "-x"]) == ["a.py"] and before_dashes(("a.py", "-x")) == ["a.py", "-x"]


def test_a_script_named_with_a_dash_is_found_among_the_leading_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.py").write_text("")
    assert dashed_script(["-o", "a.svg", "-dash.py"], TAKES_VALUE) == "-dash.py"
    assert dashed_script(["-o", "-dash.py", "s.py"], TAKES_VALUE) is None  # -o's value
    assert dashed_script(["s.py", "-dash.py"], TAKES_VALUE) is None  # after SCRIPT: the script's
    assert dashed_script(["-missing.py"], TAKES_VALUE) is None
    assert dashed_script_message("-dash.py", "render") == ("a script whose name starts with a dash is taken for "
                                                           "an option: write it as ./-dash.py, e.g. gradtrace "
                                                           "render ./-dash.py ...")


def test_a_cluster_mixing_ours_and_the_scripts_is_refused():
    assert mixed_cluster(["s.py", "-vq"], TAKES_VALUE, SHORT) == (
        "-vq mixes gradtrace's -q with -v, which gradtrace does not know: write them apart (-v -q), or put "
        "the script's own options after -- (everything after it goes to the script)")
    assert mixed_cluster(["s.py", "-voout"], TAKES_VALUE, SHORT).startswith(
        "-voout mixes gradtrace's -o with -v, which gradtrace does not know: put the script's")
    assert mixed_cluster(["-o", "-qx.svg", "s.py"], TAKES_VALUE, SHORT) is None  # a file name
    assert mixed_cluster(["s.py", "-vx", "-q"], TAKES_VALUE, SHORT) is None


def test_option_like_arguments_that_are_not_ours():
    assert option_like(["--frame=fr", "-v", "--pass", "3", "-vv", "x"], {"--pass", "-o"}) == ["--frame", "-v"]


def test_the_script_naming_the_option_makes_it_its_own(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("parser.add_argument('--steps')\n")
    text = read_text(script)
    assert names_itself(text, "--steps") and not names_itself(text, "--step") and not names_itself(text, "-s")
    assert read_text(tmp_path / "missing.py") == "" and read_text(None) == ""


def test_a_misplaced_option_gets_a_warning_naming_where_it_belongs():
    assert misplaced_option("--frame", ["--frames", "--pass"], [], "render") == (
        "--frame went to the script as its own argument: did you mean gradtrace's --frames? (put the "
        "script's arguments after --, and this warning goes)")
    assert misplaced_option("--timeout", ["--pass"], ["render"], "steps") == (
        "--timeout went to the script as its own argument: it is an option of gradtrace render, not of steps "
        "(put the script's arguments after --, and this warning goes)")
    assert misplaced_option("--epochs", ["--pass"], [], "steps") is None
