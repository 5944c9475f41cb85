"""The local runner completes the CPU example end to end: real MindSpore training on CPU, real numbers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.mindformers import counts, families

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "examples" / "run-cpu.yaml"

pytestmark = pytest.mark.mindspore


def test_run_local_completes_the_cpu_example(tmp_path, shared_fixtures):
    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "run-local", str(EXAMPLE),
                           "--run-dir", str(run_dir), "--data-dir", str(data_dir),
                           "--fixtures", str(shared_fixtures)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "all 7 stages done" in proc.stdout
    # Every stage ran as its own command and said ok.
    for stage in ("prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"):
        log = (run_dir / f"{stage}.log").read_text()
        assert log.startswith(f"$ {sys.executable} -m mathtune_pipeline.cli {stage} --spec ")
        assert json.loads(log.strip().splitlines()[-1])["ok"] is True

    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    results = json.loads((run_dir / "report" / "results.json").read_text())
    mc = families.tiny_model_config(spec["model"]["tiny"])
    pattern = "|".join(f".*{m}" for m in spec["lora"]["targetModules"])
    assert results["trainableParams"] == counts.lora_params(mc, {"lora_rank": spec["lora"]["rank"],
                                                                 "target_modules": pattern})
    assert results["totalParams"] == counts.base_params(mc)
    assert results["bestEpoch"] in range(1, spec["training"]["epochs"] + 1)
    assert 0 <= results["mathAccuracy"] <= 1 and 0 <= results["f1"] <= 100
    evaluate = json.loads((run_dir / "evaluate" / "scores.json").read_text())
    # The gate as the example states it (relative to the base model's scores), applied to the real scores.
    gate = spec["evaluation"]["gate"]
    passing = [int(e) for e, s in evaluate["epochs"].items()
               if s["f1"] >= gate["f1"] * evaluate["base"]["f1"] and s["em"] >= gate["em"] * evaluate["base"]["em"]]
    assert results["passedEpochs"] == sorted(passing) and results["gatePassed"] == bool(passing)
    assert evaluate["count"] == spec["evaluation"]["maxSamples"]
    loss = json.loads((run_dir / "train" / "loss.json").read_text())
    assert len(loss) == results_steps(run_dir)
    assert sum(s["loss"] for s in loss[-5:]) < sum(s["loss"] for s in loss[:5])  # it learned something
    for png in ("loss.png", "accuracy_per_type.png", "squad_gate.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000


def results_steps(run_dir: Path) -> int:
    manifest = json.loads((run_dir / "train" / "manifest.json").read_text())
    return manifest["result"]["steps"]
