"""The samples: each runs with plain Python from anywhere, traces as described, and is in the gallery."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tracer
from tracer import gallery

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GALLERY = SAMPLES / "gallery"
NAMES = sorted(p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_"))

# What each sample prints when run with plain Python (no arguments).
EXPECTED_OUTPUT = {
    "seed_example": ["y = 1.648721", "dy/dx = 3.297443"],
    "reuse": ["y = 6.0", "dy/dx = 2.0"],
    "generations": ["y = 32.0", "dy/dx = 64.0"],
    "sphere": ["z = 2.0", "dz/dx = 2.0, dz/dy = 2.0"],
    "matyas": ["z = 0.040000", "dz/dx = 0.040000, dz/dy = 0.040000"],
    "goldstein_price": ["z = 1876.0", "dz/dx = -5376.0, dz/dy = 8064.0"],
    "newton": ["0: x = 2.000000, f'(x) = 24.000000, f''(x) = 44.000000"],
    "tanh_derivatives": ["d1 tanh/dx1 at 1 = 0.419974", "d2 tanh/dx2 at 1 = -0.639700"],
    "mlp_step": ["loss before the step = 0.404028", "loss after the step  = 0.403903"],
    "own_engine_bug": ["y = 32.0", "dy/dx = 96.0  (the right answer is 64.0)"],
    "forgot_cleargrad": ["step 2: x.grad = -9, x = 3.75", "step 4: x.grad = -2.25, x = 6.1875"],
}




def test_every_sample_is_described():
    assert sorted(EXPECTED_OUTPUT) == NAMES
    assert "seed_example" in NAMES  # the README's quick start renders it


@pytest.mark.parametrize("name", NAMES)
def test_sample_runs_with_plain_python_from_another_directory(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(SAMPLES / f"{name}.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for expected in EXPECTED_OUTPUT[name]:
        assert expected in lines
    assert list(tmp_path.iterdir()) == []


def leaf_grads(trace, which="last"):
    p = trace.select_pass(which)
    return {trace.name_of(v): trace.final_grad(p, v).item() for v in p.variables
            if trace.variables[v].creator is None and trace.name_of(v)}


def traced(name, *args):
    trace = tracer.run_script(SAMPLES / f"{name}.py", args)
    assert trace.error is None, trace.error
    return trace


@pytest.mark.parametrize("name, grads", [
    ("seed_example", {"x": 3.297442541400256}),
    ("reuse", {"x": 2.0}),
    ("generations", {"x": 64.0}),
    ("sphere", {"x": 2.0, "y": 2.0}),
    ("matyas", {"x": 0.04, "y": 0.04}),
    ("goldstein_price", {"x": -5376.0, "y": 8064.0}),
    ("own_engine_bug", {"x": 96.0}),
])
def test_traced_gradients(name, grads):
    found = leaf_grads(traced(name))
    for var, grad in grads.items():
        assert found[var] == pytest.approx(grad)


def test_newton_second_pass_gives_the_second_derivative():
    trace = traced("newton", "--iterations", "1")
    assert trace.pass_count == 2
    assert leaf_grads(trace)["x"] == pytest.approx(44.0)


def test_tanh_second_derivative():
    assert leaf_grads(traced("tanh_derivatives"))["x"] == pytest.approx(-2 * math.tanh(1) * (1 - math.tanh(1) ** 2))


def test_mlp_step_has_gradients_for_every_weight():
    grads = traced("mlp_step")
    p = grads.select_pass()
    named = {grads.name_of(v): grads.final_grad(p, v) for v in p.variables if grads.name_of(v)}
    assert {"W1", "b1", "W2", "b2", "loss"} <= set(named)
    assert named["W1"].shape == (1, 3) and named["W2"].shape == (3, 1)


def test_forgotten_cleargrad_is_a_stale_gradient_and_fixed_is_clean():
    from tracer.diagnose import diagnose

    trace = tracer.run_script(SAMPLES / "forgot_cleargrad.py", [], keep="all")
    assert [(f.kind, f.pass_id, trace.name_of(f.variable)) for f in diagnose(trace)] == [
        ("stale-gradient", 2, "x"), ("stale-gradient", 3, "x"), ("stale-gradient", 4, "x")]
    fixed = tracer.run_script(SAMPLES / "forgot_cleargrad.py", ["--fixed"], keep="all")
    assert diagnose(fixed) == ()
    assert leaf_grads(fixed)["x"] == -0.75


def test_own_engine_is_traced_with_its_own_classes():
    trace = traced("own_engine_bug")
    assert trace.engine.function_classes == ("__main__.Function",)
    assert [trace.calls[s.call].op for s in trace.select_pass().steps] == ["Add", "Square", "Square", "Square", "Square"]
    fixed = traced("own_engine_bug", "--fixed")
    assert leaf_grads(fixed)["x"] == 64.0


# ----- the gallery ----------------------------------------------------------------------------------

def test_gallery_lists_samples_with_their_settings():
    found = {s.name: s for s in gallery.find_samples(SAMPLES)}
    assert sorted(found) == NAMES
    assert found["seed_example"].summary.startswith("The lecture's running example")
    assert found["newton"].args == ("--iterations", "1")
    assert found["tanh_derivatives"].options == {"inner": "hide"}


def test_bad_gallery_settings_are_refused(tmp_path):
    (tmp_path / "bad.py").write_text('"""Bad."""\nGALLERY = {"args": "--x"}\n')
    with pytest.raises(gallery.SamplesNotFoundError, match="GALLERY must be a literal dict"):
        gallery.find_samples(tmp_path)


def test_gallery_readme_shows_every_sample():
    text = (SAMPLES / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(gallery/([\w]+)\.svg\)", text)
    assert sorted(shown) == NAMES
    for name in NAMES:
        assert f"{name}.py" in text


@pytest.mark.slow
def test_gallery_is_up_to_date(tmp_path):
    """The committed SVGs are what `gradtrace samples --out samples/gallery` gives today."""
    stale = []
    for sample in gallery.find_samples(SAMPLES):
        result = gallery.render_sample(sample, tmp_path, "svg")
        assert result.error is None, result.error
        committed = GALLERY / f"{sample.name}.svg"
        if not committed.exists() or committed.read_bytes() != result.path.read_bytes():
            stale.append(sample.name)
    assert not stale, (f"gallery pictures out of date: {', '.join(stale)}; regenerate them with "
                       f"`gradtrace samples --out samples/gallery` (or python -m cli samples --out samples/gallery)")


def test_installed_samples_are_found_outside_a_checkout(tmp_path, monkeypatch):
    installed = tmp_path / "prefix" / "share" / "gradtrace" / "samples"
    installed.mkdir(parents=True)
    (installed / "seed_example.py").write_text('"""The seed."""\n')
    monkeypatch.setattr(gallery, "_HERE", tmp_path / "site-packages" / "tracer")  # no checkout
    monkeypatch.setattr(gallery.sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.chdir(tmp_path)
    assert gallery.find_samples_dir() == installed


def test_setup_cfg_installs_the_samples():
    text = (SAMPLES.parent / "setup.cfg").read_text()
    assert "share/gradtrace/samples = samples/*.py, samples/*.ipynb" in text


def test_the_homework_notebook_runs_and_its_bug_is_found():
    from tracer.diagnose import diagnose
    t = tracer.run_script(SAMPLES / "homework.ipynb")
    assert t.error is None and t.engine.function_classes == ("__main__.Function",)
    found = [(f.kind, t.calls[f.call].op if f.call else t.name_of(f.variable)) for f in diagnose(t)]
    assert found == [("overwritten-gradient", "Add"), ("leaf-gradient", "x")]
