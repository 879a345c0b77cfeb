"""tracer.frames / tracer.player: one frame per step on a frozen layout, the HTML player."""

import html
import json
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import engine as E
import tracer
import tracer.render as R
from tests.tracer.builders import generation_trace, hostile_trace, problem_trace, seed_trace
from tests.tracer.engines import fullcore
from tracer.frames import FramesError, frames, write_frames
from tracer.player import _steps, player_html, write_player
from tracer.themes import get_theme

SVG = "{http://www.w3.org/2000/svg}"
pytestmark = [pytest.mark.renderer,
              pytest.mark.skipif(R.find_renderer("bundled") is None, reason="graphviz-pure missing")]
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
GEOMETRY = re.compile(r'(?<= )(?:points|d|viewBox|width|height|x|y)="[^"]*"')


def grad_texts(svg: str) -> dict[str, str]:
    root = ET.fromstring(svg)
    return {g.get("id")[3:-1]: "".join(list(g.iter(f"{SVG}text"))[-1].itertext())
            for g in root.iter(f"{SVG}g") if re.fullmatch(r"a_v\d+g", g.get("id") or "")}


def hidden_edges(svg: str) -> set[str]:
    return set(re.findall(r'<g id="(g\d+_\d+)" class="edge grad s\d+" visibility="hidden"', svg))


def test_one_frame_per_step_written_as_numbered_files(tmp_path):
    paths = write_frames(seed_trace(), tmp_path / "frames")
    assert [p.name for p in paths] == ["step-000.svg", "step-001.svg", "step-002.svg", "step-003.svg"]
    for path in paths:
        ET.parse(path)
    assert frames(generation_trace()).count == 4


def test_frames_show_gradients_known_so_far_and_the_current_step():
    made = frames(generation_trace(), grad_edges=True)
    svgs = list(made.svgs())
    texts = [grad_texts(s) for s in svgs]
    assert [t["1"] for t in texts] == ["not yet", "not yet", "not yet", "64"]
    assert [t["2"] for t in texts] == ["not yet", "8", "16", "16 (cleared)"]
    assert [len(hidden_edges(s)) for s in svgs] == [3, 2, 1, 0]
    for k, svg in enumerate(svgs, start=1):
        assert f"Backward step {k} of 4" in svg
        current = re.search(rf'<g id="f{made.pass_record.steps[k - 1].call}" class="node fn">\n'
                            rf'<polygon fill="([^"]+)"', svg)
        assert current.group(1) == made.theme.current_fill
    assert made.svg(3) == svgs[2]
    with pytest.raises(FramesError, match="0 to 4"):
        made.svg(5)


def test_layout_is_frozen_between_frames():
    for trace in (generation_trace(), problem_trace(), hostile_trace()):
        svgs = list(frames(trace, grad_edges=True, theme="debug", legend=True).svgs())
        geometry = {tuple(GEOMETRY.findall(re.sub(r"<text [^>]*>", "<text>", s))) for s in svgs}
        texts_at = [re.findall(r'<text [^>]*x="([^"]+)" y="([^"]+)"', s) for s in svgs]
        assert len(geometry) == 1
        assert all(t == texts_at[0] for t in texts_at)


def test_frames_are_deterministic(tmp_path):
    a = write_frames(hostile_trace(), tmp_path / "a", theme="debug")
    b = write_frames(hostile_trace(), tmp_path / "b", theme="debug")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_no_backward_pass_has_no_frames():
    with tracer.trace() as t:
        E.square(E.Variable(np.array(2.0)))
    with pytest.raises(FramesError, match="no backward"):
        frames(t)
    with pytest.raises(FramesError, match="step="):
        frames(seed_trace(), step=2)


def test_a_pass_that_ran_no_step_is_named_as_such():
    """"the run made no backward pass (call y.backward() ...)" when it had called backward()."""
    with tracer.trace() as t:
        y = E.square(E.Variable(np.array([1.0, 2.0]), name="x"))
        with pytest.raises(E.BackwardError):
            y.backward()  # not a scalar: raises before the first step
    with pytest.raises(FramesError, match=r"backward pass 1 ran none \(it raised BackwardError before its "
                                          r"first step\)"):
        frames(t)
    with pytest.warns(tracer.TraceWarning), tracer.trace() as t:  # Square: on no pass's graph
        x = E.Variable(np.array(2.0), name="x")
        E.square(x)
        x.backward()
    with pytest.raises(FramesError, match=r"backward pass 1 ran none \(its root has no creator\)"):
        frames(t)


def test_player_is_self_contained():
    page = player_html(problem_trace(), theme="debug", grad_edges=True, title="<My> lecture")
    assert "<title>&lt;My&gt; lecture</title>" in page
    assert not re.search(r"<(?:link|img|iframe)\b|\bsrc=|@import|url\(|https?://(?!www\.w3\.org/)", page)
    data = re.search(r'<script type="application/json" id="gt-data">(.*?)</script>', page, re.S).group(1)
    assert '"count":4' in data and "ValueError: shapes" in data and "Log produced -inf" in data
    assert "{{" not in page


def test_the_player_title_names_the_source_the_root_and_the_failing_step():
    """"gradtrace: backward pass 1, 4 steps" told neither the script, nor the root, nor that
    the pass raised."""
    def title(page):
        return re.search(r"<title>(.*?)</title>", page).group(1)

    page = player_html(seed_trace(), source="seed_example.py")
    assert title(page) == "seed_example.py: backward pass 1 from y, 3 steps \u2014 gradtrace"
    assert f"<h1>{title(page)}</h1>" in page
    assert title(player_html(seed_trace())) == "backward pass 1 from y, 3 steps \u2014 gradtrace"
    assert title(player_html(problem_trace(), source="a<b>.py")) == \
        "a&lt;b&gt;.py: backward pass 1 from y, 4 steps, failed at step 2 (ValueError) \u2014 gradtrace"
    assert "\\ud800" in title(player_html(seed_trace(), source="odd\ud800.py"))  # no UTF-8 for it
    player_html(seed_trace(), source="odd\ud800.py").encode("utf-8")


def run_chromium(url: str, tmp_path, *extra: str) -> tuple[str, str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             *extra, "--dump-dom", url]
    done = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=90, check=False)
    return done.stdout, done.stderr


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_player_runs_in_headless_chromium_without_errors(tmp_path):
    path = write_player(hostile_trace(), tmp_path / "player.html", theme="debug", grad_edges=True)
    dom, log = run_chromium(path.as_uri() + "#step=3", tmp_path)
    assert 'data-ready="1"' in dom and 'data-step="3"' in dom, log[-2000:]
    assert "data-errors" not in re.search(r"<html[^>]*>", dom).group(0) and "Uncaught" not in log
    assert "Add" in dom and "Gradients sent" in dom
    # one block per variable (name, then numbers): a table squeezed long names to a letter a line
    assert '<div class="item"><div class="name">' in dom and "<td" not in dom
    hidden = set(re.findall(r'<g id="(g\d+_\d+)" class="edge grad s(\d+)" visibility="hidden"', dom))
    assert {step for _, step in hidden} == {"4"}
    cell = re.search(r'<g id="a_v3g">.*?</g>', dom, re.S).group(0)
    assert re.findall(r"<text[^>]*>([^<]*)</text>", cell) == ["grad ", "1"]


def test_notebook_player_view_is_the_page_in_a_sandboxed_iframe(tmp_path):
    view = seed_trace().player(height=500, theme="lecture")
    assert view.html == player_html(seed_trace(), theme="lecture")
    frame = view._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" [^>]*></iframe>', frame).group(1)
    assert html.unescape(srcdoc) == view.html and "height:500px" in frame
    assert "box-sizing:border-box;width:100%" in frame  # the border stays inside the cell's width
    assert view.save(tmp_path / "p.html").read_text(encoding="utf-8") == view.html
    for bad in (99, 500.0, True, "500"):
        with pytest.raises(ValueError, match="height must be a whole number of pixels"):
            seed_trace().player(height=bad)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_notebook_player_runs_inside_its_sandboxed_iframe_without_errors(tmp_path):
    page = tmp_path / "notebook.html"
    page.write_text(f"<html><body>{hostile_trace().player(theme='debug')._repr_html_()}</body></html>",
                    encoding="utf-8")
    dom, log = run_chromium(page.as_uri(), tmp_path, "--virtual-time-budget=3000")
    assert "<iframe" in dom
    assert "Uncaught" not in log, log[-2000:]  # history.replaceState throws in a srcdoc iframe


def test_a_backward_that_ran_twice_is_named_in_captions_and_the_player():
    from tests.tracer.test_dot import repeated_trace
    made = frames(repeated_trace(), grad_edges=True)
    assert made.captions[3] == "Backward step 3 of 5: Square (runs again at step 5)"
    assert made.captions[5] == "Backward step 5 of 5: Square again (it ran at step 3)"
    page = player_html(made)
    assert '"again":["ran again at step 5"]' in page
    assert '"again":["already ran at step 3"]' in page
    assert page.count('"again":[]') == 3


def test_constants_have_no_gradient_field_to_step_through():
    from tests.tracer.test_dot import constant_trace
    t = constant_trace()
    made = frames(t, grad_edges=True)
    consts = {str(v.id) for v in t.variables.values() if v.kind == "Constant"}
    for svg in made.svgs():
        assert not consts & set(grad_texts(svg))
    assert made.count == len(t.select_pass().steps)


def test_the_player_panel_names_variables_as_the_picture_does():
    from tracer.player import _steps
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        y = E.exp(E.square(x) - 3.0)  # an unnamed output, and a constant folded into Sub's box
        y.name = "y"
        y.backward()
    steps = {s["op"]: s for s in _steps(frames(t))}
    # by the badge of the step that ran its maker (several unnamed Mul outputs read alike)
    assert steps["Exp"]["sent"] == [["the output of Sub (step 2)", "2.718", "2.718"]]  # it said v4
    assert [name for name, *_ in steps["Sub"]["sent"]] == ["the output of Square (step 3)"]  # no 3.0 (folded)
    assert steps["Exp"]["received"] == [["y", "1"]]
    from tracer.player import _name
    sub_output = next(v for v, r in t.variables.items() if r.creator and t.calls[r.creator].op == "Sub")
    assert _name(t, sub_output, {}, {}) == "the output of Sub (data 1)"  # its maker ran no step


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_player_fits_a_small_graph_and_shows_a_big_one_at_reading_size(tmp_path):
    small = write_player(seed_trace(), tmp_path / "small.html")
    dom, log = run_chromium(small.as_uri(), tmp_path, "--window-size=1200,900")
    assert 'data-ready="1"' in dom and 'data-fit="1"' in dom, log[-2000:]
    with tracer.trace() as t:
        y = E.Variable(np.array(0.5), name="x")
        for _ in range(120):
            y = E.sin(y)
        y.backward()
    big = write_player(t, tmp_path / "big.html")
    dom, log = run_chromium(big.as_uri(), tmp_path, "--window-size=1200,900")
    assert 'data-ready="1"' in dom and 'data-fit="0"' in dom, log[-2000:]  # fit shrank it to a hairline
    assert "Uncaught" not in log and "data-errors" not in re.search(r"<html[^>]*>", dom).group(0)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_a_narrow_window_measures_the_graph_with_the_panel_below_it(tmp_path):
    """Under 800 px the panel sits below the graph: the fit was decided while it was still
    empty, so the graph was fitted into the strip left over, its text 3.5 px high."""
    path = write_player(generation_trace(), tmp_path / "p.html")
    dom, log = run_chromium(path.as_uri(), tmp_path, "--window-size=780,600")
    assert 'data-ready="1"' in dom and 'data-fit="0"' in dom, log[-2000:]
    dom, log = run_chromium(path.as_uri(), tmp_path, "--window-size=1280,720")
    assert 'data-ready="1"' in dom and 'data-fit="1"' in dom, log[-2000:]  # beside the panel it fits


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_space_plays_from_the_slider_too_and_browser_shortcuts_are_left_alone(tmp_path):
    """Space did nothing once the slider had been dragged (it has focus then), and Alt+Left
    (the browser's Back) stepped back instead."""
    keys = ('<script>(function () {\n'
            '  function press(target, key, alt) {\n'
            '    target.dispatchEvent(new KeyboardEvent("keydown", { key: key, altKey: !!alt, bubbles: true,'
            ' cancelable: true }));\n'
            '    document.documentElement.setAttribute("data-after-" + key.replace(" ", "space") +'
            ' (alt ? "-alt" : ""), document.documentElement.getAttribute("data-step") + " " +'
            ' document.getElementById("gt-play").textContent);\n'
            '  }\n'
            '  var slider = document.getElementById("gt-slider");\n'
            '  slider.focus();\n'
            '  press(document.body, "ArrowLeft", true);\n'
            '  press(document.body, "ArrowLeft");\n'
            '  press(slider, " ");\n'
            '}());</script>\n')
    page = player_html(generation_trace()).replace("</body>", keys + "</body>")
    path = tmp_path / "p.html"
    path.write_text(page, encoding="utf-8")
    dom, log = run_chromium(path.as_uri() + "#step=2", tmp_path)
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-after-arrowleft-alt="2 Play"' in html_tag, log[-2000:]  # left to the browser
    assert 'data-after-arrowleft="1 Play"' in html_tag  # (the keys do reach the player)
    assert 'data-after-space="1 Pause"' in html_tag  # playing


def test_a_filled_gradient_field_stays_inside_the_rounded_box():
    svg = next(frames(seed_trace()).svgs())
    for vid in grad_texts(svg):
        box = re.search(rf'<g id="v{vid}" class="node var[^"]*">\n<rect [^>]* y="([-\d.]+)" '
                        rf'width="[\d.]+" height="([\d.]+)" rx="([\d.]+)"', svg)
        fill = re.search(rf'<g id="a_v{vid}g"><a [^>]*>\n<polygon [^>]*points="[-\d.]+,([-\d.]+) ', svg)
        bottom, radius = float(box.group(1)) + float(box.group(2)), float(box.group(3))
        inset = 2.0  # the table's border and cell spacing: the fill's side
        gap = bottom - float(fill.group(1))
        assert radius - (radius ** 2 - (radius - gap) ** 2) ** 0.5 <= inset, vid


def badge_looks(svg: str) -> dict[str, tuple[str, str]]:
    """step -> (badge cell's fill and stroke, number's fill), for badges inside function boxes."""
    looks = {}
    for m in re.finditer(r'<rect\b([^>]*?)/?>(?:</rect>)?\s*<text\b([^>]*)>(\d+)</text>', svg):
        cell, number = (dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)) for attrs in m.group(1, 2))
        looks[m.group(3)] = (f"{cell['fill']} {cell['stroke']}", number["fill"])
    return looks


def heavy_boxes(svg: str) -> list[str]:
    """Function boxes with a heavy border (an SVG file, or the DOM Chromium serialised)."""
    return re.findall(r'<g id="f(\d+)" class="node fn[^"]*">\s*<polygon [^>]*stroke-width="3"', svg)


def test_frames_show_steps_to_come_hollow_and_the_current_step_heavy_as_step_pictures_do():
    made = frames(generation_trace())
    steps = made.pass_record.steps
    for k, svg in enumerate(made.svgs(), start=1):
        looks = badge_looks(svg)
        assert sorted(looks) == ["1", "2", "3", "4"]
        for n, (cell, number) in looks.items():
            if int(n) <= k:
                assert cell == "#1f2d3d none" and number == "#ffffff", (k, n)
            else:  # hollow: told apart from a step that ran also in greyscale
                assert cell == "#ffffff #1f2d3d" and number == "#1f2d3d", (k, n)
        assert heavy_boxes(svg) == [str(steps[k - 1].call)]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_player_shows_steps_to_come_hollow_and_the_current_step_heavy(tmp_path):
    made = frames(generation_trace())
    path = write_player(made, tmp_path / "player.html")
    frame_2 = made.svg(2)
    dom, log = run_chromium(path.as_uri() + "#step=2", tmp_path)
    assert 'data-step="2"' in dom, log[-2000:]
    assert badge_looks(dom) == badge_looks(frame_2)
    assert heavy_boxes(dom) == heavy_boxes(frame_2) == [str(made.pass_record.steps[1].call)]
    caption = re.compile(r'<g id="a_caption">.*?<text[^>]*>([^<]*)</text>', re.S)
    assert caption.search(dom).group(1) == caption.search(frame_2).group(1) == "Backward step 2 of 4: Square"


def test_a_frames_legend_explains_the_current_step_steps_to_come_and_fresh_gradients():
    svg = next(frames(generation_trace(), legend=True).svgs())
    for words in ("the step shown: its backward just ran", "a step that has not run yet",
                  "just set by the step shown"):
        assert words in svg


def test_frame_0_is_the_graph_before_the_first_step_for_a_first_slide(tmp_path):
    made = frames(generation_trace(), grad_edges=True)
    before = made.svg(0)
    assert "Before backward: the forward values (4 steps to come)" in before
    root = str(made.pass_record.root)
    assert grad_texts(before)[root] == "1"  # the seed
    assert {text for v, text in grad_texts(before).items() if v != root} == {"not yet"}
    assert len(hidden_edges(before)) == 5 and heavy_boxes(before) == []  # every gradient edge
    plain = frames(generation_trace()).svg(0)  # (gradient edges' labels have badges of their own)
    assert all(cell == "#ffffff #1f2d3d" for cell, _ in badge_looks(plain).values())  # none ran yet
    assert list(made.svgs(0))[1:] == list(made.svgs())  # frames 1.. as before
    assert write_frames(made, tmp_path)[0].read_text(encoding="utf-8") == before


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_player_opens_before_the_first_step(tmp_path):
    made = frames(generation_trace())
    dom, log = run_chromium(write_player(made, tmp_path / "p.html").as_uri(), tmp_path)
    assert 'data-step="0"' in dom and "Before backward" in dom, log[-2000:]
    assert "Home / End first / last, space plays and pauses" in dom  # not only in tooltips
    assert badge_looks(dom) == badge_looks(made.svg(0)) and heavy_boxes(dom) == []


def test_frame_0_of_a_one_step_pass_explains_its_hollow_badge():
    with tracer.trace() as t:
        E.square(E.Variable(np.array(2.0), name="x")).backward()
    assert "a step that has not run yet" in frames(t, legend=True).svg(0)


def test_a_gradient_just_set_is_bold_as_well_as_highlighted_so_greyscale_keeps_it():
    made = frames(generation_trace())
    fresh = [look for frame in made.looks[1:] for look in frame.values() if look.fill == made.theme.updated_fill]
    assert fresh and all(look.bold for look in fresh)
    assert 'font-weight="bold"' in re.search(r'<g id="a_v2g">.*?</g>', made.svg(2), re.S).group(0)


def test_a_long_gradient_set_in_bold_fits_its_field():
    from tracer.labels import text_width
    with tracer.trace() as t:
        w = E.Variable(np.array([[0.05245], [-0.2678], [0.1808]]), name="W2")
        E.sum(E.matmul(E.Variable(np.linspace(-0.0123, 0.0456, 15).reshape(5, 3)), w)).backward()
    made = frames(t)
    svg = made.svg(made.count)
    cell = re.search(r'<g id="a_v2g"><a [^>]*>\n<polygon [^>]*points="([-\d.]+),[-\d.]+ [-\d.]+,[-\d.]+ '
                     r'([-\d.]+),', svg)
    width = float(cell.group(2)) - float(cell.group(1))
    longest = max((look.text for frame in made.looks for v, look in frame.items() if v == 2), key=text_width)
    needed = text_width("grad ", 9) + 1.1 * text_width(longest, 12) + 4  # bold Arial: a tenth wider; padding
    assert len(longest) > 20 and needed <= width


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_a_printed_player_is_the_whole_graph_and_its_panel_on_one_page(tmp_path):
    path = write_player(generation_trace(), tmp_path / "p.html")
    pdf = tmp_path / "p.pdf"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer", "--virtual-time-budget=3000",
             f"--print-to-pdf={pdf}", path.as_uri() + "#step=2"]
    subprocess.run([CHROMIUM, *flags], capture_output=True, timeout=90, check=False)
    pages = re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes())
    assert len(pages) == 1  # the title, the graph and the panel were three pages (a scroll box before)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_a_printed_tall_graph_keeps_a_step_with_four_inputs_on_its_page(tmp_path):
    """The graph takes 70% of the page: the panel of a step sending four gradients ran onto a
    second page, its last block alone there."""
    class Add4(E.Function):
        def forward(self, a, b, c, d):
            return a + b + c + d

        def backward(self, gy):
            return gy, gy, gy, gy

    with tracer.trace() as t:
        ends = []
        for k, name in enumerate("abcd", 1):
            v = E.Variable(np.array(0.1 * k), name=name)
            for _ in range(4):
                v = E.sin(v)
            ends.append(v)
        Add4()(*ends).backward()
    path = write_player(t, tmp_path / "p.html")
    pdf = tmp_path / "p.pdf"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer", "--virtual-time-budget=3000",
             f"--print-to-pdf={pdf}", path.as_uri() + "#step=1"]
    subprocess.run([CHROMIUM, *flags], capture_output=True, timeout=90, check=False)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes())) == 1


def test_the_player_scrolls_the_current_step_to_the_middle_of_a_tall_graph():
    script = (Path(tracer.__file__).parent / "player.js").read_text(encoding="utf-8")
    # "nearest" left the current box at the top edge, the node feeding it out of view
    assert 'scrollIntoView({ block: "center", inline: "nearest" })' in script
    assert 'block: "center"' in player_html(seed_trace())


def test_the_player_panel_numbers_the_outputs_of_a_function_with_several():
    from tracer.player import _steps

    class Split2(E.Function):
        def forward(self, x):
            return x[:1], x[1:]

        def backward(self, ga, gb):
            return np.concatenate([ga, gb])

    def loss(x):  # the two outputs get no names
        parts = Split2()(x)
        return E.sum(parts[0] * 2.0 + parts[1] * 3.0)

    with tracer.trace() as t:
        y = loss(E.Variable(np.array([1.0, 2.0]), name="x"))
        y.name = "y"
        y.backward()
    received = [name for s in _steps(frames(t)) if s["op"] == "Split2" for name, _ in s["received"]]
    assert received == ["output 0 of Split2 (step 5)", "output 1 of Split2 (step 5)"]  # they read alike


def test_frame_zero_hides_the_legend_rows_about_the_step_shown():
    made = frames(seed_trace(), legend=True)
    hidden = re.compile(r'<g id="a_legend_now\d" visibility="hidden">')
    assert len(hidden.findall(made.svg(0))) == 4  # "just ran", "just set": nothing has, before step 1
    assert hidden.findall(made.svg(1)) == [] and "the step shown: its backward just ran" in made.svg(1)
    assert "nowRows" in player_html(seed_trace(), legend=True)  # the player hides them at step 0 too


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_player_shows_the_step_rows_of_the_legend_only_after_step_zero(tmp_path):
    path = write_player(seed_trace(), tmp_path / "p.html", legend=True)
    for step, hidden in ((0, True), (2, False)):
        dom, log = run_chromium(path.as_uri() + f"#step={step}", tmp_path)
        row = re.search(r'<g id="a_legend_now1"[^>]*>', dom).group(0)
        assert ('visibility="hidden"' in row) is hidden, (step, log[-1000:])


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_player_grows_the_gradients_graph_step_by_step(tmp_path):
    """Under create_graph the calls a step's backward makes were all drawn from the start."""
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        y = E.sin(E.square(x))
        y.backward(create_graph=True)
    made = frames(t)
    by_step = {s.index: s.inner_calls for s in made.pass_record.steps}
    assert by_step[1] and by_step[2]  # Sin's backward made cos(...) * gy, Square's 2 * x * gy
    path = write_player(made, tmp_path / "player.html")
    dom, log = run_chromium(path.as_uri() + "#step=1", tmp_path, "--virtual-time-budget=3000")
    assert 'data-step="1"' in re.search(r"<html[^>]*>", dom).group(0), log[-2000:]  # shown, not step 0
    faint = set(re.findall(r'<g id="(f\d+)" class="node[^"]*" opacity="0.15"', dom))
    assert faint == {f"f{c}" for c in by_step[2]}  # step 2's calls: not made yet
    assert "Calls this backward made (dashed)" in dom
    dom, _ = run_chromium(path.as_uri() + "#step=2", tmp_path, "--virtual-time-budget=3000")
    assert 'data-step="2"' in re.search(r"<html[^>]*>", dom).group(0)
    assert 'opacity="0.15"' not in dom
    slides = list(made.svgs(0))  # the frames grow the same way
    assert set(re.findall(r'<g id="(f\d+)" class="node[^"]*" opacity="0.15"', slides[1])) == faint
    assert 'opacity="0.15"' not in slides[2]


def test_the_players_panel_says_when_the_calls_a_backward_made_are_not_drawn():
    """Without create_graph the calls a backward made (gy * x1, gy * x0, and the engine adding
    them up, under no_grad) are not drawn:
    the panel called them 'dashed' all the same."""
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        fullcore.mul(x, x).backward()
    made = frames(t)
    (step,) = _steps(made)
    assert step["built"] == ["Mul", "Mul", "Add"] and step["builtNote"] == "not drawn: made without create_graph"
    assert _steps(frames(t, inner="show"))[0]["builtNote"] == "dashed"
    assert _steps(frames(t, inner="hide"))[0]["builtNote"] == "not drawn: inner calls hidden"


def test_the_player_panel_tells_a_gradient_never_returned_from_one_returned_as_none():
    """A step that raised, or returned fewer gradients than inputs, sent nothing to them: the
    panel said "None", as if backward had returned None (the steps table says "error: ...")."""
    class Boom(fullcore.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            raise ValueError("boom")

    class Half(fullcore.Function):  # forgets the second input's gradient
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            return gy * self.inputs[1].data

    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x, w = fullcore.Variable(np.array(0.5), name="x"), fullcore.Variable(np.array(3.0), name="w")
        y = Boom()(Half()(x, w))
        y.name = "y"
        with pytest.raises(ValueError, match="boom"):
            y.backward()
    (failed,) = _steps(frames(t))
    assert failed["error"] and [grad for _, grad, _ in failed["sent"]] == ["nothing: its backward raised"]
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x, w = fullcore.Variable(np.array(0.5), name="x"), fullcore.Variable(np.array(3.0), name="w")
        Half()(x, w).backward()
    (half,) = _steps(frames(t))
    assert [(name, grad) for name, grad, _ in half["sent"]] == [
        ("x", "3"), ("w", "nothing: its backward returned fewer")]


def test_the_player_panel_gives_the_shape_of_an_array_it_shows_in_part():
    """"[3, 3, 3, ...]" alone hid whether the gradient was (10,) or (2, 5), as `steps` tells."""
    with tracer.trace() as t:
        x = E.Variable(np.arange(10.0).reshape(2, 5), name="x")
        E.sum(x * 3.0).backward()
    mul = next(s for s in _steps(frames(t)) if s["op"] == "Mul")
    assert mul["sent"] == [["x", "[3, 3, 3, ...] shape (2, 5)", "[3, 3, 3, ...] shape (2, 5)"]]
    with tracer.trace() as t:
        E.sum(E.Variable(np.array([1.0, 2.0]), name="x") * 3.0).backward()
    assert next(s for s in _steps(frames(t)) if s["op"] == "Mul")["sent"] == [["x", "[3, 3]", "[3, 3]"]]


def test_write_frames_removes_the_frames_of_an_earlier_longer_pass(tmp_path):
    """Only the CLI removed them: the API left step-003... of the earlier run beside the new ones."""
    write_frames(generation_trace(), tmp_path)
    assert len(list(tmp_path.glob("step-*.svg"))) == 5
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "intro-001.svg").write_text("not a frame of this prefix")
    written = write_frames(seed_trace(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "intro-001.svg", "notes.txt", "step-000.svg", "step-001.svg", "step-002.svg", "step-003.svg"]
    assert [p.name for p in written] == ["step-000.svg", "step-001.svg", "step-002.svg", "step-003.svg"]


def test_a_ctrl_c_while_frames_are_moved_in_waits_until_all_are(tmp_path, monkeypatch):
    moved = []
    real_replace = os.replace

    def replace(source, target):
        if not moved:
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C after the first rename
        moved.append(target)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_frames(seed_trace(), tmp_path)
    assert len(moved) == 4 and len(list(tmp_path.glob("step-*.svg"))) == 4


PROBE = """<script>(function () {
  // after the player's script: what a lecture hall sees, written on <html> for --dump-dom
  var root = document.documentElement, graph = document.getElementById("gt-graph");
  var data = %s;  // the theme's font size, the root's id, each step's call
  var svg = graph.querySelector("svg"), view = svg.viewBox.baseVal, box = svg.getBoundingClientRect();
  // px per point of the drawing (the fitted SVG keeps its aspect: the smaller ratio)
  var scale = Math.min(box.width / view.width, box.height / view.height);
  root.setAttribute("data-text-px", (data.fontPt * scale).toFixed(1));
  root.setAttribute("data-overflow", (graph.scrollHeight - graph.clientHeight) + "," +
                    (graph.scrollWidth - graph.clientWidth));
  function inView(node) {
    var r = node.getBoundingClientRect(), g = graph.getBoundingClientRect();
    return r.top >= g.top && r.left >= g.left && r.bottom <= g.top + graph.clientHeight &&
      r.right <= g.left + graph.clientWidth ? 1 : 0;
  }
  var seen = [];
  function look(node) { seen.push(inView(node) + "@" + graph.scrollLeft + "," + graph.scrollTop); }
  look(document.getElementById("v" + data.root));
  [1, 2, 3, 4, 5, 6, 7, 30].filter(function (k) { return k <= data.count; }).forEach(function (k) {
    while (Number(root.getAttribute("data-step")) < k) {
      document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    }
    look(document.getElementById("f" + data.steps[k - 1].call));
  });
  root.setAttribute("data-seen", seen.join(" "));
}());</script>
"""


def _probed(tmp_path, name: str, trace, size: str) -> dict[str, str]:
    record = trace.select_pass()
    facts = {"fontPt": get_theme("lecture").font_size, "root": record.root, "count": len(record.steps),
             "steps": [{"call": s.call} for s in record.steps]}
    path = tmp_path / f"{name}.html"
    path.write_text(player_html(trace).replace("</body>", PROBE % json.dumps(facts) + "</body>"),
                    encoding="utf-8")
    dom, log = run_chromium(path.as_uri(), tmp_path, f"--window-size={size}")
    tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-ready="1"' in tag and "data-errors" not in tag and "Uncaught" not in log, log[-2000:]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag))


@pytest.fixture(scope="module")
def goldstein():
    """The sample a lecture projected: 38 steps, 1208 x 1395 pt, the root at the bottom."""
    return tracer.run_script(Path(__file__).resolve().parents[2] / "samples" / "goldstein_price.py")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_a_big_graph_opens_at_a_readable_size_not_fitted_to_six_pixel_text(tmp_path, goldstein):
    """Fitted while the scale was >= 0.5: at 1920 x 1080 Goldstein-Price's values were ~6 px,
    unreadable projected. Fitted only while they stay >= 11 px, else shown at that size."""
    seen = _probed(tmp_path, "big", goldstein, "1920,1080")
    assert seen["fit"] == "0" and 11 <= float(seen["text-px"]) < 12, seen  # as much in view as is readable
    small = _probed(tmp_path, "small", seed_trace(), "1920,1080")
    assert small["fit"] == "1" and float(small["text-px"]) >= 11, small  # a small graph still fits


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_a_fitted_graph_has_no_scroll_bar(tmp_path):
    """A fitted SVG sat inline, on the text's baseline: the few pixels below it made the box
    scroll, a needless scroll bar beside a graph that fits."""
    for size in ("1280,720", "1920,1080"):
        seen = _probed(tmp_path, "small", seed_trace(), size)
        assert seen["fit"] == "1" and seen["overflow"] == "0,0", seen


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_stepping_a_scrolled_graph_shows_the_root_then_each_step_without_jumping(tmp_path, goldstein):
    """Step 0 opened scrolled to the top left, the root (at the bottom) out of view; then every
    step re-centred its function, the graph moving under the audience's eyes."""
    seen = _probed(tmp_path, "big", goldstein, "1280,720")
    assert seen["fit"] == "0", seen
    root, *steps = seen["seen"].split()
    assert root.startswith("1@") and root != "1@0,0", seen  # scrolled to the root, which is in view
    assert all(s.startswith("1@") for s in steps), seen  # each step's function in view
    assert steps[:7] == [root] * 7, seen  # steps 1-7 are near it, in view: not scrolled
    assert steps[7] != root, seen  # step 30, far up: scrolled to
