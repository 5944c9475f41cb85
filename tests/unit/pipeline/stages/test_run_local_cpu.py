"""`mathtune-pipeline run-local`: the stages as a Job runs them, one command
each, on this machine. The whole CPU example (real training, and the
learning it must show) runs once in the suite, on the cluster
(tests/e2e/test_run_cpu.py); here the runner's own part: inputs localized,
each stage its own process with its command logged, stages chosen with
--stages, a stage's result checked before the next."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "examples" / "run-cpu.yaml"

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, demo_inputs):
    """One stand-in work volume for the module, holding what demo-data makes
    (made once for the session: it warms the base model up, a minute or more)."""
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(demo_inputs, data / "fixtures")
    return data


def run_local(tmp_path, data_dir, stages):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "run-local", str(EXAMPLE),
                           "--run-dir", str(run_dir), "--data-dir", str(data_dir),
                           "--stages", stages],
                          capture_output=True, text=True, timeout=600)
    return proc, run_dir, data_dir


def test_run_local_runs_each_chosen_stage_as_its_own_command(tmp_path, data_dir):
    proc, run_dir, _ = run_local(tmp_path, data_dir, "prepare,tokenize")
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


def test_run_local_stops_at_the_first_failing_stage(tmp_path, data_dir):
    proc, run_dir, _ = run_local(tmp_path, data_dir, "tokenize,train")
    assert proc.returncode != 0
    assert "tokenize" in proc.stdout + proc.stderr and "run `mathtune-pipeline prepare` first" in proc.stdout + proc.stderr
    assert not (run_dir / "train.log").exists()


def test_demo_data_holds_out_rows_the_fine_tune_and_warm_up_never_saw():
    """What predict scores the example on (the e2e test holds the learning
    itself to a gain over the base): rows of the fine-tuned type only, in
    neither the fine-tune nor the warm-up."""
    from mathtune_pipeline.stages import demo_data

    doc = yaml.safe_load(EXAMPLE.read_text())["spec"]
    assert doc["prediction"]["dataset"]["uri"].endswith(demo_data.HELDOUT_SYNTH)
    assert set(doc["prediction"]["types"]) == set(demo_data.LEARN_TYPES)
    for seed in (0, 1):
        tune, warm, held = demo_data.synthetic_rows(seed)
        asked = [q for q, _ in held]
        assert len(asked) == len(set(asked)) == sum(h for _, h in demo_data.LEARN_TYPES.values())
        assert not set(asked) & {q for q, _ in tune + warm}
        assert len(tune) == sum(t for t, _ in demo_data.LEARN_TYPES.values())
