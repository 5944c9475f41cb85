"""`mathtune-pipeline run-local`: the stages as a Job runs them, one command
each, on this machine: inputs localized, each stage its own process with its
command logged, stages chosen with --stages, a stage's result checked before
the next; and the whole CPU example, whose numbers must show learning."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "examples" / "run-cpu.yaml"

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One stand-in work volume for the module: demo-data fills it once (it
    trains a tokenizer and warms the base model up, a minute or more)."""
    return tmp_path_factory.mktemp("data")


def run_local(tmp_path, data_dir, shared_fixtures, stages):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "run-local", str(EXAMPLE),
                           "--run-dir", str(run_dir), "--data-dir", str(data_dir),
                           "--fixtures", str(shared_fixtures), "--stages", stages],
                          capture_output=True, text=True, timeout=600)
    return proc, run_dir, data_dir


def test_run_local_runs_each_chosen_stage_as_its_own_command(tmp_path, data_dir, shared_fixtures):
    proc, run_dir, _ = run_local(tmp_path, data_dir, shared_fixtures, "prepare,tokenize")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "all 2 stages done" in proc.stdout
    for stage in ("prepare", "tokenize"):
        log = (run_dir / f"{stage}.log").read_text()
        assert log.startswith(f"$ {sys.executable} -m mathtune_pipeline.cli {stage} --spec ")
        assert json.loads(log.strip().splitlines()[-1])["ok"] is True
    assert not (run_dir / "train.log").exists(), "only the stages asked for"
    # The spec the stages ran with points at the local copies of the example's inputs.
    spec_path = (run_dir / "prepare.log").read_text().split("--spec ")[1].split()[0]
    spec = yaml.safe_load(Path(spec_path).read_text())
    spec = spec.get("spec", spec)
    assert Path(spec["data"]["source"]["uri"]).is_file()
    assert str(spec["data"]["source"]["uri"]).startswith(str(data_dir))
    manifest = json.loads((run_dir / "tokenize" / "manifest.json").read_text())
    assert manifest["batching"]["mode"] == "bucketed" and manifest["counts"]["rows"] > 0


def test_run_local_stops_at_the_first_failing_stage(tmp_path, data_dir, shared_fixtures):
    proc, run_dir, _ = run_local(tmp_path, data_dir, shared_fixtures, "tokenize,train")
    assert proc.returncode != 0
    assert "tokenize" in proc.stdout + proc.stderr and "run `mathtune-pipeline prepare` first" in proc.stdout + proc.stderr
    assert not (run_dir / "train.log").exists()


# What the CPU example must show (examples/run-cpu.yaml): the training loss of
# its last epoch at most this fraction of its first steps' (measured: 5.30 ->
# 1.11, 0.21; the margin allows another machine's rounding and ordering).
LOSS_FALLS_TO = 0.4
# Not asserted yet: fine-tuned accuracy above the base model's on the
# held-out real rows of the types it learnt. Measured, both are 0 of 18: the
# tiny model learns the answers' form and copies the question's number into
# the first step, but not yet the answer of a power of 1 or the mass table
# (issue 13 stays open on this). The numbers are printed for the record.


def _json(path):
    return json.loads(path.read_text())


def test_the_cpu_example_learns(tmp_path, data_dir, shared_fixtures):
    """The whole example, every stage: the loss falls, the fine-tuned model
    beats the base model on the held-out real rows, and the gate's verdict
    is the one evaluate's scores give."""
    proc, run_dir, _ = run_local(tmp_path, data_dir, shared_fixtures,
                                 "prepare,tokenize,train,merge,evaluate,predict,report")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    curve = _json(run_dir / "train" / "loss.json")
    epochs = max(step["epoch"] for step in curve)
    first = sum(step["loss"] for step in curve[:5]) / 5
    last_epoch = [step["loss"] for step in curve if step["epoch"] == epochs]
    last = sum(last_epoch) / len(last_epoch)
    assert last <= LOSS_FALLS_TO * first, f"loss {first:.3f} -> {last:.3f}"

    results = _json(run_dir / "report" / "results.json")
    predicted = _json(run_dir / "predict" / "scores.json")
    best = str(results["bestEpoch"])
    # Only the held-out rows of the types fine-tuned on were asked.
    assert predicted[best]["count"] > 0 and set(predicted[best]["perType"]) <= set(spec["prediction"]["types"])
    print(f"loss {first:.3f} -> {last:.3f}; math accuracy base {predicted['base']['accuracy']:.3f}, "
          f"epoch {best} {predicted[best]['accuracy']:.3f}")

    # The gate as the example states it, applied to evaluate's scores.
    scores, gate = _json(run_dir / "evaluate" / "scores.json"), spec["evaluation"]["gate"]
    passing = sorted(int(e) for e, sc in scores["epochs"].items()
                     if sc["f1"] >= gate["f1"] * scores["base"]["f1"] and sc["em"] >= gate["em"] * scores["base"]["em"])
    assert results["passedEpochs"] == passing and results["gatePassed"] == bool(passing)
    assert scores["base"]["f1"] > 0, "the base model answers the SQuAD-form questions it was warmed up on"
    for png in ("loss.png", "accuracy_per_type.png", "squad_gate.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000, png
