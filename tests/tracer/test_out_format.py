"""tracer.out_format: the output format from --format and OUT's name, and OUT checked against the script."""

import os

import pytest

from tracer.errors import OutputError
from tracer.out_format import OutputChoiceError, choose_format, same_file


def test_the_format_comes_from_the_option_or_the_extension():
    assert choose_format(None, None) is None and choose_format(None, "SVG") == "svg"
    assert choose_format("g.PNG", None) == "png" and choose_format("g.gv", None) == "dot"
    assert choose_format("-", None) == "dot" and choose_format("-", "json") == "json"
    assert choose_format("graph", "svg") == "svg"  # no extension to disagree with


def test_a_disagreement_names_the_option_to_change():
    with pytest.raises(OutputChoiceError) as told:
        choose_format("g.svg", "png")
    assert told.value.option == "format"
    assert str(told.value) == "g.svg is named as svg but --format is png: name the file g.png, or leave out --format"
    with pytest.raises(OutputChoiceError) as unknown:
        choose_format("g.txt", None)
    assert unknown.value.option == "output" and str(unknown.value).endswith(", or give --format")
    with pytest.raises(OutputChoiceError) as binary:
        choose_format("-", "png")
    assert binary.value.option == "output" and str(binary.value).startswith("png is binary and cannot go to stdout")


def test_a_directory_is_no_output_file(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        choose_format(str(tmp_path), "svg")


def test_same_file_follows_links_also_before_out_exists(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("")
    link = tmp_path / "link.py"
    os.symlink(script, link)
    assert same_file(link, script) and same_file(tmp_path / "." / "s.py", script)
    assert not same_file(tmp_path / "new.svg", script)
