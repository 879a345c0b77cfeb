"""tracer.render: SVG/PNG/JSON/PDF output, renderer choice, errors naming the fixes, Jupyter."""

import json
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import engine as E
import tracer
import tracer.render as R
from tests.tracer.builders import chain_trace, generation_trace, hostile_trace, seed_trace
from tests.tracer.engines import listpop
from tracer.dot import to_dot
from tracer.errors import TraceError
from tracer.render import (GraphTooLargeError, RenderError, RendererNotFoundError, RenderWarning,
                           layout_warning, render, write)

SVG = "{http://www.w3.org/2000/svg}"
needs_bundled = pytest.mark.skipif(R.find_renderer("bundled") is None, reason="graphviz-pure missing")
needs_system = pytest.mark.skipif(R.find_renderer("system") is None, reason="no system Graphviz")
pytestmark = pytest.mark.renderer


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@needs_bundled
def test_svg_parses_and_shows_values_and_gradients():
    data = render(seed_trace(), "svg", renderer="bundled")
    texts = svg_texts(data)
    for expected in ("x", "0.5", "3.297", "Square", "Exp", "1.649", "2.568 (cleared)"):
        assert expected in texts
    assert b"Arimo" in data and b"Liberation Sans" in data


@needs_bundled
def test_bundled_svg_is_byte_identical_across_runs():
    assert render(hostile_trace(), "svg", renderer="bundled") == \
        render(hostile_trace(), "svg", renderer="bundled")


@needs_bundled
def test_hostile_names_render_literally():
    texts = " ".join(svg_texts(render(hostile_trace(), "svg", renderer="bundled", theme="debug",
                                      grad_edges=True)))
    for name in ('<b>&amp;"q"</b>', "back\\slash {braces}", "이름 한국어", "-> \\N \\G",
                 "x]; evil [", 'Op<"&>', "출력 y", "}{", 'a\\"b', "two", "lines"):
        assert name in texts, name


@needs_bundled
def test_png_json_and_dot_formats(tmp_path):
    png = render(seed_trace(), "png", renderer="bundled")
    assert png.startswith(b"\x89PNG")
    layout = json.loads(render(seed_trace(), "json", renderer="bundled"))
    assert len(layout["objects"]) == 7
    assert render(seed_trace(), "dot") == to_dot(seed_trace()).source.encode()
    path = write(generation_trace(), tmp_path / "g.svg", grad_edges=True)
    ET.parse(path)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    import struct
    chunks, position = [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        chunks.append((data[position + 4:position + 8], data[position + 8:position + 8 + length]))
        position += 12 + length
    return chunks


def test_a_png_says_its_resolution_so_office_programs_place_it_at_its_size():
    import struct
    import zlib
    data = render(seed_trace(), "png", renderer="bundled", dpi=300)
    chunks = png_chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[:2] == [b"IHDR", b"pHYs"] and kinds.count(b"pHYs") == 1 and kinds[-1] == b"IEND"
    assert struct.unpack(">IIB", chunks[1][1]) == (11811, 11811, 1)  # 300 dpi in pixels per metre
    assert R.png_with_resolution(data, 300) == data  # replaced, not added twice
    position = data.index(b"pHYs")
    assert data[position + 13:position + 17] == struct.pack(">I", zlib.crc32(data[position:position + 13]))


@pytest.mark.parametrize("bad", [-5, 0, 10 ** 6, 2.5, True, "300"])
def test_dpi_out_of_range_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="dpi must be a whole number from 10 to 1200"):
        render(seed_trace(), "png", dpi=bad)


@pytest.mark.parametrize("bad", [-1, 0, "5", True])
def test_a_timeout_that_is_not_positive_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="timeout must be a number of seconds above 0"):
        render(seed_trace(), "svg", timeout=bad)


@pytest.mark.system_dot
@needs_system
def test_a_pdf_page_is_the_picture_without_a_paper_margin():
    import re
    svg = render(seed_trace(), "svg", renderer="system").decode()
    width, height = (float(v) for v in re.search(r'<svg [^>]*width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", render(seed_trace(), "pdf"))
    assert abs(float(box.group(1)) - width) <= 2 and abs(float(box.group(2)) - height) <= 2  # 36 pt a side before


@pytest.mark.system_dot
@needs_system
def test_pdf_uses_the_system_dot(tmp_path):
    assert render(seed_trace(), "pdf").startswith(b"%PDF")
    assert R.choose_renderer("svg", "system")[0] == "system"


def test_missing_renderer_names_both_fixes_and_dot_still_works(monkeypatch):
    monkeypatch.setattr(R, "find_renderer", lambda kind: None)
    with pytest.raises(RendererNotFoundError) as info:
        render(seed_trace(), "svg")
    message = str(info.value)
    assert "\n" not in message and "apt-get install graphviz" in message and "bundled" in message
    assert isinstance(info.value, TraceError)
    with pytest.raises(RendererNotFoundError, match="apt-get install graphviz.*bundled"):
        render(seed_trace(), "svg", renderer="system")
    with pytest.raises(RendererNotFoundError, match="PDF needs the system Graphviz"):
        render(seed_trace(), "pdf")
    assert render(seed_trace(), "dot").startswith(b"digraph")


def test_environment_variable_selects_the_renderer(monkeypatch):
    monkeypatch.setattr(R, "find_renderer", lambda kind: f"/bin/{kind}")
    monkeypatch.setenv(R.ENV_RENDERER, "system")
    assert R.choose_renderer("svg") == ("system", "/bin/system")
    monkeypatch.delenv(R.ENV_RENDERER)
    assert R.choose_renderer("svg") == ("bundled", "/bin/bundled")
    assert R.choose_renderer("pdf") == ("system", "/bin/system")
    assert R.choose_renderer("svg", "bundled") == ("bundled", "/bin/bundled")
    with pytest.raises(RenderError, match="the bundled renderer cannot write PDF"):  # was made by dot
        R.choose_renderer("pdf", "bundled")
    monkeypatch.setenv(R.ENV_RENDERER, "bundled")  # a preference only: PDF still comes from dot
    assert R.choose_renderer("pdf") == ("system", "/bin/system")
    with pytest.raises(RenderError, match="auto, bundled, system"):
        R.choose_renderer("svg", "cairo")


def test_only_text_the_bundled_png_font_lacks_asks_for_full_fonts():
    from tracer.labels import needs_full_fonts
    for covered in ("x₁ θ_Ω", "∂L/∂w", "√x ≤ ∞", "x²·y³ → y", "a — b…", "ℝⁿ"):
        assert not needs_full_fonts(covered), covered  # it warned they would be boxes
    for missing in ("이름", "∇f", "a ⊕ b", "x ∈ S", "★", "①", "🙂"):
        assert needs_full_fonts(missing), missing


def test_png_with_cjk_prefers_system_fonts(monkeypatch):
    monkeypatch.setattr(R, "find_renderer", lambda kind: f"/bin/{kind}" if kind == "bundled" else None)
    with pytest.warns(RenderWarning, match="boxes"):
        assert R.choose_renderer("png", None, "이름")[0] == "bundled"
    monkeypatch.setattr(R, "find_renderer", lambda kind: f"/bin/{kind}")
    assert R.choose_renderer("png", None, "이름")[0] == "system"
    assert R.choose_renderer("png", None, "plain")[0] == "bundled"
    with pytest.warns(RenderWarning, match="boxes in PNG from the bundled renderer: use svg, or --renderer system"):
        assert R.choose_renderer("png", "bundled", "이름")[0] == "bundled"  # asked for: still told
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert R.choose_renderer("svg", "bundled", "이름")[0] == "bundled"  # SVG text is the browser's


@needs_bundled
def test_renderer_errors_carry_its_message():
    with pytest.raises(RenderError, match="bundled renderer"):
        render("digraph { a -> }", "svg", renderer="bundled")
    with pytest.raises(RenderError, match="unknown format"):
        render(seed_trace(), "gif")


def test_big_graphs_warn_and_can_be_refused():
    big = to_dot(chain_trace(3100))
    message = layout_warning(big)
    assert message and "6201 nodes" in message and "--format dot" in message
    assert "--inner hide" not in message  # a chain has no calls made inside backward to hide
    import numpy as np

    import engine as E
    import tracer
    with tracer.trace() as t:
        E.sin(E.Variable(np.array(1.0))).backward(create_graph=True)
    assert "hide the calls made inside backward (--inner hide" in layout_warning(to_dot(t), limit=1)
    assert layout_warning(to_dot(seed_trace())) is None
    small_but_copied = to_dot(seed_trace())
    small_but_copied._gradtrace_copies = 501
    assert "nodes (501 of them copies of variables used all along it)" in layout_warning(small_but_copied)
    with pytest.raises(GraphTooLargeError, match="6201 nodes"):
        render(big, "svg", max_nodes=5000)


@needs_bundled
def test_jupyter_display():
    t = seed_trace()
    bundle = t._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml") and "Trace" in bundle["text/plain"]
    assert t._repr_svg_() == bundle["image/svg+xml"]


@needs_bundled
def test_a_notebook_sees_the_findings_of_check_in_the_trace_shown_and_a_report(tmp_path):
    """diagnose(t) then t gave the same lecture picture (no finding marked), and the debug
    picture needed the system Graphviz; the report needed two imports."""
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        x = listpop.Variable(np.array(2.0), name="x")
        a = listpop.square(x)
        listpop.add(listpop.square(a), listpop.square(a)).backward()  # no generations: too early
    before = t._repr_mimebundle_()["image/svg+xml"]
    report = t.check()
    assert str(report).startswith("gradtrace check: ") and "premature-backward" in repr(report)
    assert not str(report).endswith("\n") and report.findings == t.findings and t.findings
    after = t._repr_mimebundle_()["image/svg+xml"]
    assert after != before and "#d32f2f" in after.lower()  # the debug theme, with the finding's red border
    shown = t.picture(theme="debug", legend=True)
    assert shown.save(tmp_path / "g.svg").read_text(encoding="utf-8") == shown.svg
    with tracer.trace() as long_chain:
        y = E.Variable(np.array(0.5))
        for _ in range(40):
            y = E.sin(y)
        y.backward()
    bundle = long_chain._repr_mimebundle_()
    assert "overflow:auto" in bundle["text/html"] and bundle["text/html"].count("<svg") == 1
    assert "text/html" not in t._repr_mimebundle_()  # a short one is shown as it is


def test_jupyter_display_without_renderer(monkeypatch):
    monkeypatch.setattr(R, "find_renderer", lambda kind: None)
    bundle = seed_trace()._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "no picture" in bundle["text/plain"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_trace()._repr_svg_() is None


@needs_bundled
def test_plain_text_labels_of_big_graphs_render_names_literally(monkeypatch):
    import tracer.dot as D
    monkeypatch.setattr(D, "COMPACT_NODES", 0)
    texts = svg_texts(render(hostile_trace(), "svg", renderer="bundled", theme="debug"))
    for name in ('<b>&amp;"q"</b>', "back\\slash {braces}", "이름 한국어", "-> \\N \\G", 'Op<"&> ④'):
        assert name in texts, name


def _fake_renderer(tmp_path, monkeypatch, fails_when: str) -> Path:
    """A renderer that fails like Graphviz's edge router whenever its input contains ``fails_when``."""
    program = tmp_path / "fake-dot"
    program.write_text(f"#!{sys.executable}\nimport sys\ntext = sys.stdin.read()\n"
                       f"if {fails_when!r} in text:\n"
                       f"    sys.stderr.write('lib/pathplan/shortest.c:333: triangulation failed\\n"
                       f"Error: lost v1 f1 edge\\n')\n    sys.exit(1)\n"
                       f"sys.stdout.write('<svg>' + str(text.count('->')) + '</svg>')\n")
    program.chmod(0o755)
    monkeypatch.setattr(R, "find_renderer", lambda kind: str(program))
    return program


def test_an_edge_the_renderer_cannot_route_is_drawn_without_its_ports(tmp_path, monkeypatch):
    _fake_renderer(tmp_path, monkeypatch, ":s -> ")
    source = "digraph {\n\tv1 -> f1\n\tv1:s -> f1:s [style=dashed]\n}\n"
    assert R.render(source, "svg", renderer="bundled") == b"<svg>2</svg>"  # both edges kept


def test_a_graph_that_fails_also_without_ports_names_the_renderers_error(tmp_path, monkeypatch):
    _fake_renderer(tmp_path, monkeypatch, "v1 -> f1")
    with pytest.raises(R.RenderError, match=r"failed on -Tsvg: lib/pathplan/shortest.c:333: triangulation "
                                            r"failed; Error: lost v1 f1 edge$"):
        R.render("digraph {\n\tv1 -> f1\n\tv1:s -> f1:s\n}\n", "svg", renderer="bundled")


def test_pdf_creation_dates_are_fixed_so_the_same_run_gives_the_same_bytes(monkeypatch):
    made = b"<< /Producer (cairo)\n   /CreationDate (D:20261127043719Z)\n   /ModDate (D:20261127043719+01'00') >>"
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    fixed = R.deterministic_pdf(made)
    assert fixed == made.replace(b"20261127043719Z", b"19700101000000Z").replace(
        b"20261127043719+01'00'", b"19700101000000+00'00'")
    assert len(fixed) == len(made)  # the PDF's byte offsets stay valid
    cairo = b"/CreationDate (D:20261127141754+09'00)"  # cairo's own form, outside UTC: no last quote
    assert R.deterministic_pdf(cairo) == b"/CreationDate (D:19700101000000+00'00)"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert b"(D:20231114221320Z)" in R.deterministic_pdf(made)


@needs_system
def test_a_pdf_carries_the_fixed_date(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    data = render(seed_trace(), "pdf")
    assert data.startswith(b"%PDF") and b"/CreationDate (D:19700101000000" in data


def test_the_timeout_bounds_the_layout_and_its_retry_without_ports_together(monkeypatch):
    clock, given = [0.0], []

    def slow_run(kind, program, argv, source, timeout, limit=None):
        given.append(timeout)
        clock[0] += 3.0
        if len(given) == 1:
            raise R._RoutingError("triangulation failed")
        return b"<svg/>"

    monkeypatch.setattr(R, "_run", slow_run)
    monkeypatch.setattr(R.time, "monotonic", lambda: clock[0])
    source = "digraph {\n\ta:s -> b:n [id=e1]\n}\n"
    assert render(source, "svg", renderer="bundled", timeout=5) == b"<svg/>"
    assert given == [5, 2.0]  # the retry gets what is left, not another 5 s
    given.clear()
    with pytest.raises(RenderError, match="took more than 2 s"):
        render(source, "svg", renderer="bundled", timeout=2)
    assert given == [2]


def _named(*names: str):
    import numpy as np

    import engine as E
    import tracer
    with tracer.trace() as t:
        total = None
        for k, name in enumerate(names):
            v = E.Variable(np.array(float(k + 1)), name=name)
            total = v * 2.0 if total is None else total + v * 2.0
        total.backward()
    return t


def test_non_ascii_names_are_padded_for_the_bundled_renderer_only(tmp_path, monkeypatch):
    from tracer.labels import PAD, pad_wide
    assert pad_wide("abc") == "abc" and pad_wide("\u2202y/\u2202x") == "\u2202y/\u2202x"
    assert pad_wide("입력") == "입력" + PAD * 2 and pad_wide("ΦΨΩΔ") == "ΦΨΩΔ" + PAD * 6
    assert pad_wide("a<b") == "a&lt;b"  # escaped too
    from tracer.dot import padded_dot
    t = _named("Ωмега")
    assert PAD in padded_dot(t).source
    assert PAD not in to_dot(t).source and PAD not in t.to_dot().source  # the DOT, as -o g.dot writes it
    assert PAD not in R.render(t, "dot").decode()  # for anyone's dot: it measures real fonts
    own = 'digraph { a [shape=plain label=<x&#32;&#32;y>] }'
    assert R.render(own, "dot").decode() == own  # a user's DOT is never rewritten
    program = tmp_path / "fake-dot"  # the system renderer is handed the source without them
    program.write_text(f"#!{sys.executable}\nimport sys\n"
                       f"sys.stdout.write('<svg>' + str('&#32;' in sys.stdin.read()) + '</svg>')\n")
    program.chmod(0o755)
    monkeypatch.setattr(R, "find_renderer", lambda kind: str(program))
    assert R.render(t, "svg", renderer="system") == b"<svg>False</svg>"
    assert R.render(t, "svg", renderer="bundled") == b"<svg>True</svg>"
    assert R.render(own, "svg", renderer="system") == b"<svg>True</svg>"


@needs_bundled
def test_wide_greek_and_cyrillic_capitals_get_boxes_as_wide_as_latin_ones():
    layout = json.loads(R.render(_named("ШЩЖШЩЖШЩЖШЩЖ", "MMMMMMMMMMMM"), "json", renderer="bundled"))
    widths = {}
    for node in layout["objects"]:
        label = json.dumps(node.get("label", ""), ensure_ascii=False)
        for name in ("ШЩЖШЩЖШЩЖШЩЖ", "MMMMMMMMMMMM"):
            if name in label:
                widths[name] = float(node["width"])
    # bold Ш is wider than M; the box was sized for 12 half-em letters and the name ran out of it
    assert widths["ШЩЖШЩЖШЩЖШЩЖ"] >= widths["MMMMMMMMMMMM"]


def test_an_error_line_is_cut_by_its_width_and_padded():
    from tracer.dotlabels import _clipped
    assert _clipped("e" * 40, 40) == "e" * 40 and _clipped("e" * 45, 40) == "e" * 39 + "..."
    assert _clipped("가" * 30, 40) == "가" * 19 + "..."  # it kept 39 wide characters


@needs_bundled
@pytest.mark.parametrize("name, shown", [("a\x1b[31mb", "a\\x1b[31mb"), ("a\x00b", "a\\x00b"),
                                         ("a\x0cb", "a\\x0cb"), ("a\ud800b", "a\\ud800b")])
def test_control_characters_and_lone_surrogates_in_names_are_shown_escaped(tmp_path, name, shown):
    import tracer
    from tracer import jsonio
    t = _named(name)
    assert shown in " ".join(svg_texts(R.render(t, "svg", renderer="bundled")))  # the renderer refused them
    assert tracer.loads(jsonio.dumps(t)).variables[1].name == name  # JSON: \ud800 is a JSON escape
    path = tmp_path / "p.html"
    from tracer.player import write_player
    write_player(t, path)
    assert path.read_bytes().decode("utf-8")  # a surrogate made writing fail


def test_padding_is_for_greek_and_cyrillic_not_accented_latin_and_noncharacters_are_escaped():
    from tracer.labels import PAD, escape_html, needs_full_fonts, pad_wide
    assert pad_wide("résumé") == "résumé" and pad_wide("Müller") == "Müller"  # é takes its 0.56 em
    assert pad_wide("Ω") == "Ω" + PAD * 2 and pad_wide("ж") == "ж" + PAD
    assert escape_html("a\ufffeb\uffff") == "a\\\\ufffeb\\\\uffff"  # XML refuses them
    assert needs_full_fonts("مرحبا") and needs_full_fonts("ไทย") and not needs_full_fonts("עברית Việt")


def test_a_png_too_big_for_memory_is_refused_before_it_is_drawn(monkeypatch, tmp_path):
    """A 200-op chain at 120 dpi was 3.5 billion pixels: the renderer took all memory."""
    monkeypatch.setattr(R, "PNG_MAX_PIXELS", 20_000)
    target = tmp_path / "seed.png"
    target.write_bytes(b"previous")
    with pytest.raises(RenderError, match=r"the PNG would be [\d,]+ x [\d,]+ pixels .*lower --dpi "
                                          r"\(at most \d+ fits\), or write \.svg or \.pdf"):
        R.write(seed_trace(), target, dpi=300)
    assert target.read_bytes() == b"previous"
    assert R.render(seed_trace(), "png", dpi=100)[:4] == b"\x89PNG"  # below the size looked at: drawn


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_while_the_renderer_runs_ends_the_renderer_too(tmp_path):
    """The renderer went on laying out, reparented to init, after gradtrace was terminated."""
    import signal
    import subprocess
    import time
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import tracer.render as R\n"
            "R._run('bundled', 'sleep', ['sleep', '30'], '', None)\n") % str(Path(R.__file__).parent.parent)
    parent = subprocess.Popen([sys.executable, "-c", code])

    def children():
        found = []
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(parent.pid) and fields[0] != "Z":  # state, parent pid
                found.append(int(entry.name))
        return found
    for _ in range(100):  # wait for the renderer (here: sleep) to start
        time.sleep(0.05)
        if children():
            break
    renderers = children()
    assert renderers
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(10) == -signal.SIGTERM

    def running(pid):
        try:
            return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(") ", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    deadline = time.monotonic() + 10  # polled: a loaded machine may take a while to end it
    while any(running(pid) for pid in renderers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in renderers)
