"""`kubectl mathtune sweep-report`'s page: written from a real sweep object
(data/sweep-six-trials.json: what `kubectl get mathfinetunesweep -o json` gave
for a six-trial sweep), its figures read back, and the page rendered by
headless Chromium (`make node-deps` installs it)."""
import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mathtune_api.sweep_status import MathFinetuneSweepStatus
from PIL import Image

from mathtune_operator.plugin import sweep_report
from mathtune_operator.plugin.main import cli
from tests import chromium

SAMPLE = Path(__file__).resolve().parent / "data" / "sweep-six-trials.json"
PLANTED = '<script>alert("pwned")</script> & stage train failed'
SUCCEEDED_RGB = tuple(int(sweep_report.STYLE["Succeeded"][1][i:i + 2], 16) for i in (1, 3, 5))
INFEASIBLE_RGB = tuple(int(sweep_report.STYLE["Infeasible"][1][i:i + 2], 16) for i in (1, 3, 5))


def _sample() -> dict:
    sweep = json.loads(SAMPLE.read_text())
    failed = next(t for t in sweep["status"]["trials"] if t["state"] == "Failed")
    failed["message"] = PLANTED  # a pod's text, as it could come
    return sweep


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    return sweep_report.write_report(_sample(), tmp_path_factory.mktemp("report") / "sw-report")


def _pixels(path: Path, rgb: tuple) -> int:
    image = np.asarray(Image.open(path).convert("RGB"))
    return int(np.all(image == np.array(rgb, dtype=np.uint8), axis=-1).sum())


def test_the_sample_is_a_sweep_status():
    """The fixture is what the API holds: the status model reads it."""
    status = MathFinetuneSweepStatus.model_validate(json.loads(SAMPLE.read_text())["status"])
    assert [t.state for t in status.trials] == ["Infeasible", "Infeasible", "Succeeded", "Failed", "Infeasible",
                                                "Infeasible"]


def test_writes_three_figures_and_the_page(report):
    assert set(report) == {"html", "accuracy_vs_f1", "per_epoch", "importance"}
    assert [report[k].name for k in ("html", "accuracy_vs_f1", "per_epoch", "importance")] == \
        ["report.html", "accuracy-vs-f1.png", "accuracy-per-epoch.png", "importance.png"]
    for key in ("accuracy_vs_f1", "per_epoch", "importance"):
        with Image.open(report[key]) as image:
            assert image.format == "PNG"
            width, height = image.size
        assert width == 800 and 300 <= height <= 800, (key, image.size)
        assert report[key].stat().st_size > 10_000
        assert len(np.unique(np.asarray(Image.open(report[key]).convert("RGB")).reshape(-1, 3), axis=0)) > 50
    # the scatter marks the trials by state: both colours are there
    assert _pixels(report["accuracy_vs_f1"], SUCCEEDED_RGB) > 20
    assert _pixels(report["accuracy_vs_f1"], INFEASIBLE_RGB) > 20


def test_the_scatter_shows_the_gate_the_best_and_every_finished_trial():
    fig = sweep_report.accuracy_vs_f1_figure(_sample())
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Succeeded (gate passed)", "Infeasible (missed the gate)", "gate F1 ≥ 72", "best: sw-2"]
    assert sorted(int(t.get_text()) for t in ax.texts) == [0, 1, 2, 4, 5]  # the failed trial 3 has no point
    gate = [line for line in ax.get_lines() if line.get_label().startswith("gate")][0]
    assert list(gate.get_xdata()) == [72.0, 72.0]
    assert sweep_report.gate_f1([{"gateF1": 70.0}, {"gateF1": 80.0}, {"gateF1": 72.0}, {}]) == 72.0
    lines = sweep_report.per_epoch_figure(_sample()).axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["sw-0 (Infeasible)", "sw-1 (Infeasible)", "sw-2 (Succeeded)",
                                                    "sw-4 (Infeasible)", "sw-5 (Infeasible)"]
    assert list(lines[2].get_ydata()) == [0.256, 0.305, 0.363]


def test_the_page_is_self_contained_escaped_and_lists_every_trial(report):
    page = report["html"].read_text(encoding="utf-8")
    for name in ("sw-0", "sw-1", "sw-2", "sw-3", "sw-4", "sw-5"):
        assert f">{name}<" in page
    best = page.split("<h2>Best trial</h2>")[1].split("<h2>")[0]
    assert "sw-2 (#2)" in best and "0.353" in best and "F1 ≥ 72: passed" in best and "0.0002365" in best
    assert re.findall(r'id="trial-(\d+)"', page) == ["2", "0", "1", "3", "4", "5"]  # best first, then by number
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; stage train failed" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(i) for i in images] == [report[k].read_bytes()
                                                     for k in ("accuracy_vs_f1", "per_epoch", "importance")]


def test_chromium_renders_the_page(report, tmp_path):
    url = report["html"].resolve().as_uri()
    dumped = chromium.headless(tmp_path, "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = chromium.TrialRows()
    dom.feed(dumped.stdout)
    assert dom.rows == ["trial-2", "trial-0", "trial-1", "trial-3", "trial-4", "trial-5"]
    assert len(dom.images) == 3 and all(src.startswith("data:image/png;base64,") for src in dom.images)
    assert "sw-2" in dumped.stdout and "<script>" not in dumped.stdout

    shot = tmp_path / "out.png"
    taken = chromium.headless(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text, tables and figures, not a blank page
    # the scatter's markers drawn in the browser: the images decoded and are on the page
    assert _pixels(shot, SUCCEEDED_RGB) > 20 and _pixels(shot, INFEASIBLE_RGB) > 20


def _sweep(parameters: list, trials: list) -> dict:
    template = _sample()["spec"]["template"]  # a sweep's spec needs one; the report reads its parameters
    return {"metadata": {"name": "s", "namespace": "ns"},
            "spec": {"template": template, "parameters": parameters,
                     "objective": {"metric": "mathAccuracy", "direction": "maximize"}},
            "status": {"phase": "Running", "trials": trials}}


def _trial(number: int, params: dict, objective, state: str = "Infeasible") -> dict:
    return {"number": number, "name": f"s-{number}", "state": state, "objective": objective,
            "mathAccuracy": objective, "f1": 70.0 + number, "gateF1": 72.0,
            "params": {k: json.dumps(v) for k, v in params.items()}}


SHARE = {"path": "data.mix[0].share", "type": "categorical", "values": ["0.1", "0.3"]}
MODULES = {"path": "lora.targetModules", "type": "categorical", "values": ["[wq, wv]", "[wq, wk, wv]", "[wo]"]}


def test_importance_needs_two_trials_with_an_objective(tmp_path):
    one = _sweep([SHARE], [_trial(0, {"data.mix[0].share": "0.1"}, 0.3),
                           _trial(1, {"data.mix[0].share": "0.3"}, None, state="Failed")])
    found = sweep_report.importances(one)
    assert found.trials == 1 and found.values == {} and "at least 2 trials" in found.note
    texts = [t.get_text() for ax in sweep_report.importance_figure(one).axes for t in ax.texts]
    assert texts == [found.note]
    written = sweep_report.write_report(one, tmp_path / "one")
    assert Image.open(written["importance"]).format == "PNG"
    same = _sweep([SHARE], [_trial(n, {"data.mix[0].share": "0.3"}, 0.3 + n / 10) for n in range(3)])
    assert "same value" in sweep_report.importances(same).note


def test_importance_of_a_categorical_space():
    """data.mix[0].share decides the objective (0.3 is always better), the target modules are noise: the top half
    of the trials all share 0.3 and hold every module list."""
    rows = [("0.1", "[wq, wv]", 0.10), ("0.3", "[wq, wv]", 0.50), ("0.1", "[wq, wk, wv]", 0.12),
            ("0.3", "[wo]", 0.45), ("0.1", "[wo]", 0.11), ("0.3", "[wq, wk, wv]", 0.48)]
    trials = [_trial(n, {"data.mix[0].share": s, "lora.targetModules": m}, v) for n, (s, m, v) in enumerate(rows)]
    found = sweep_report.importances(_sweep([SHARE, MODULES], trials))
    assert found.note is None and found.trials == 6 and found.constant == []
    assert set(found.values) == {"data.mix[0].share", "lora.targetModules"}
    assert found.values["data.mix[0].share"] > 0.9 > found.values["lora.targetModules"]
    assert sum(found.values.values()) == pytest.approx(1.0)
    # a parameter that never changed is listed as constant, not scored
    constant = [_trial(n, {"data.mix[0].share": s, "lora.targetModules": "[wo]"}, v)
                for n, (s, _, v) in enumerate(rows)]
    found = sweep_report.importances(_sweep([SHARE, MODULES], constant))
    assert found.constant == ["lora.targetModules"] and list(found.values) == ["data.mix[0].share"]


def test_importance_over_the_samples_mixed_space():
    found = sweep_report.importances(_sample())
    assert found.note is None and found.trials == 5  # Succeeded and Infeasible; the failed one has no objective
    assert set(found.values) == {"training.lrSchedule.learningRate", "training.epochs", "data.mix[0].share"}
    assert sum(found.values.values()) == pytest.approx(1.0)


def test_the_command_is_registered():
    result = CliRunner().invoke(cli, ["sweep-report", "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: cli sweep-report [OPTIONS] NAME" in result.output and "--out DIRECTORY" in result.output
    assert "sweep-report" in CliRunner().invoke(cli, ["--help"]).output
