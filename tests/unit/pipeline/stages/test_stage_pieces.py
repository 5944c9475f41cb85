"""The pure parts of the stages: msrun's command line, the gate and the choice of epoch,
localizing a spec for run-local, the SQuAD-form loaders, the demo data."""
import json

import pytest

from mathtune_pipeline.errors import SpecError, StageExit
from mathtune_pipeline.mindformers import checkpoints, launch, records
from mathtune_pipeline.scoring import squad_data
from tests.specs import changed, typed
from mathtune_pipeline.stages import demo_data, report, run_local


def test_msrun_command_single_and_multi_node():
    cmd = launch.msrun_command(script="w.py", script_args=["--config", "c.yaml"], local_workers=4, nodes=2,
                               master_addr="10.0.0.5", master_port=8118, node_rank=1, log_dir="/logs")
    assert cmd[-3:] == ["w.py", "--config", "c.yaml"]
    flags = cmd[:-3]
    for flag in ("--worker_num=8", "--local_worker_num=4", "--master_addr=10.0.0.5", "--master_port=8118",
                 "--node_rank=1", "--log_dir=/logs", "--join=True"):
        assert flag in flags
    with pytest.raises(SpecError) as err:
        launch.msrun_command(script="w.py", script_args=[], local_workers=4, nodes=2, master_addr="x",
                             master_port=1, node_rank=2, log_dir="/l")
    assert err.value.field == "--node-rank"


def test_master_address_resolution():
    assert launch.resolve_master("10.1.2.3", timeout=1) == "10.1.2.3"
    assert launch.resolve_master("localhost", timeout=1) == "127.0.0.1"
    assert launch.service_of("r-train-0.r-train.ns.svc") == "r-train.ns.svc"
    assert launch.service_of("localhost") is None


def test_a_missing_rank_0_is_a_transient_failure_that_says_what_is_missing():
    """Real resolution: `localhost` stands for a Service that resolves (this
    rank runs), `.invalid` names never do (RFC 6761)."""
    with pytest.raises(launch.RendezvousTimeout) as err:
        launch.resolve_master("r-train-0.invalid", timeout=0.1, interval=0.05, service="localhost")
    assert not isinstance(err.value, SpecError), "a late rank 0 must be retried, not fail the run"
    text = str(err.value)
    assert "did not resolve within 0 s (spec.runPolicy.rendezvousTimeoutSeconds)" in text
    assert "rank 0's pod is not running (not scheduled, or still starting" in text
    with pytest.raises(launch.RendezvousTimeout) as err:
        launch.resolve_master("r-train-0.invalid", timeout=0.1, interval=0.05, service="r-train.invalid")
    assert "nor did the headless Service r-train.invalid: the Service is missing" in str(err.value)


def test_stage_exit_codes():
    assert StageExit("msrun", 1).code == 1
    assert StageExit("msrun", -9).code == 137   # killed by SIGKILL: retried by the operator
    assert StageExit("msrun", 0).code == 1


def test_steps_per_epoch():
    assert records.steps_per_epoch(64, 4, 2) == 8
    assert records.steps_per_epoch(65, 4, 2) == 8     # ceil(65/2) = 33 rows per rank, last batch dropped
    assert records.steps_per_epoch(200, 32, 1) == 6
    with pytest.raises(SpecError) as err:
        records.steps_per_epoch(10, 8, 2)
    assert err.value.field == "spec.training.batchSize"


def _saves(root, names_by_rank):
    for rank, names in names_by_rank.items():
        d = root / f"rank_{rank}"
        d.mkdir(parents=True)
        for name in names + ["meta.json"]:
            (d / name).write_text("x")


def test_checkpoint_scan_complete_epochs(tmp_path):
    """Without sink mode MindFormers numbers files by training epoch."""
    _saves(tmp_path, {0: ["m_rank_0-1_8.ckpt", "m_rank_0-2_8.ckpt", "m_rank_0_1-3_8.ckpt"],
                      1: ["m_rank_1-1_8.ckpt", "m_rank_1-2_8.ckpt"]})
    cadence = checkpoints.Cadence(steps_per_epoch=8, steps_per_callback_epoch=8)
    assert sorted(checkpoints.scan(tmp_path, cadence)) == [1, 2, 3]
    assert sorted(checkpoints.complete_epochs(tmp_path, 2, cadence)) == [1, 2]
    assert checkpoints.last_complete(tmp_path, 2, cadence) == 2
    assert checkpoints.last_complete(tmp_path / "none", 2, cadence) is None


def test_sink_mode_files_are_numbered_by_sink_loop_and_mapped_to_epochs(tmp_path):
    """Sink mode, 3044 steps an epoch, sink size 2: MindFormers runs 1522 sink
    loops an epoch and names the epochs' saves -1522_2, -3044_2, ..."""
    _saves(tmp_path, {r: [f"llama3_8b_rank_{r}-{loop}_2.ckpt" for loop in (1522, 3044)] for r in range(4)})
    cadence = checkpoints.Cadence.of({"runner_config": {"sink_mode": True, "sink_size": 2}}, steps_per_epoch=3044)
    assert sorted(checkpoints.complete_epochs(tmp_path, 4, cadence)) == [1, 2]
    # A retried pod of a 5-epoch run after a crash with these two saves
    # resumes from epoch 2: the run is not complete (before: "epoch 3044").
    assert checkpoints.last_complete(tmp_path, 4, cadence) == 2


def test_sink_loops_are_aligned_with_epochs():
    # seed 000: 3045 steps an epoch (= 3 x 5 x 7 x 29); sink size 2 would save
    # one step into each next epoch and stop one step short of the last.
    assert checkpoints.aligned_sink_size(3045, 2) == 1
    assert checkpoints.aligned_sink_size(3045, 4) == 3
    assert checkpoints.aligned_sink_size(3044, 2) == 2
    assert checkpoints.aligned_sink_size(5, 8) == 5


def test_gate_and_best_epoch():
    squad = {"1": {"f1": 60, "em": 45}, "2": {"f1": 50, "em": 30}, "3": {"f1": 58, "em": 44}}
    need = report.thresholds({"mode": "relative", "f1": 0.9, "em": 0.9}, {"f1": 59.87, "em": 44.17})
    assert need == pytest.approx({"f1": 53.883, "em": 39.753})  # the contest's pass line
    # Epoch 2 has the best accuracy but lost the original capability.
    got = report.choose(["1", "2", "3"], squad, {"1": 0.5, "2": 0.9, "3": 0.7}, need)
    assert got == {"best": "3", "passed": ["1", "3"], "gatePassed": True, "closest": None}
    # None passes: the best of all is still named, the gate reported failed, and the epoch that
    # came closest named with its shortfall (the larger of F1's and EM's).
    none = report.choose(["1", "2"], {"1": {"f1": 1, "em": 1}, "2": {"f1": 2, "em": 1}}, {"1": 0.2, "2": 0.1}, need)
    assert {k: none[k] for k in ("best", "passed", "gatePassed")} == {"best": "1", "passed": [], "gatePassed": False}
    assert none["closest"]["epoch"] == 2 and none["closest"]["f1Short"] == pytest.approx(51.883)
    near = report.choose(["1", "2"], {"1": {"f1": 50, "em": 40}, "2": {"f1": 53, "em": 30}}, {"1": 0.2, "2": 0.3},
                         need)
    assert near["closest"] == {"epoch": 1, "f1": 50, "em": 40, "f1Short": 3.883, "emShort": 0.0}
    # Without evaluation there is no gate: the best accuracy wins.
    assert report.choose(["1", "2"], {}, {"1": 0.2, "2": 0.3}, None)["best"] == "2"
    assert report.thresholds({"mode": "absolute", "f1": 50, "em": 30}, {"f1": 0, "em": 0}) == {"f1": 50, "em": 30}
    with pytest.raises(SpecError):
        report.thresholds({"mode": "median", "f1": 1, "em": 1}, {"f1": 0, "em": 0})


def test_run_local_moves_work_volume_paths(tmp_path):
    spec = typed({"model": {"tokenizer": {"uri": "/data/fixtures/tok.json"}, "checkpoint": "/data/m.ckpt"},
                          "data": {"source": {"uri": "s3://bucket/train.json"}},
                          "evaluation": {"dataset": {"uri": "/data/fixtures/squad/dev-small.jsonl"}}})
    local = run_local.localize(spec, tmp_path)
    assert local["model"]["tokenizer"]["uri"] == str(tmp_path / "fixtures/tok.json")
    assert local["model"]["checkpoint"] == str(tmp_path / "m.ckpt")
    assert local["data"]["source"]["uri"] == "s3://bucket/train.json"
    assert local["storage"]["dataPath"] == str(tmp_path)
    assert spec.storage.data_path == "/data"  # the input is left alone


def test_demo_squad_set_loads_and_is_span_based(tmp_path):
    path = tmp_path / "squad" / "dev-small.jsonl"
    n = demo_data.write_squad_small(path)
    examples = squad_data.load(path, "squad-jsonl")
    assert len(examples) == n >= 20
    assert all(e["answers"][0] in e["context"] for e in examples)
    assert squad_data.prompt(examples[0]).endswith("### Response:")
    assert len(squad_data.load(path, "squad-jsonl", max_samples=5)) == 5


def test_squad_json_keeps_the_first_question_of_each_paragraph(tmp_path):
    doc = {"data": [{"title": "t", "paragraphs": [
        {"context": "A B", "qas": [{"question": "q1", "answers": [{"text": "A"}]},
                                   {"question": "q2", "answers": [{"text": "B"}]}]},
        {"context": "C", "qas": [{"question": "q3", "answers": [{"text": "C"}]}]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(doc))
    assert [e["question"] for e in squad_data.load(path, "squad-json")] == ["q1", "q3"]
    path.write_text("{}")
    with pytest.raises(SpecError) as err:
        squad_data.load(path, "squad-json")
    assert err.value.field == "spec.evaluation.dataset.uri"
    with pytest.raises(SpecError):
        squad_data.load(path, "csv")


def test_train_plan_ascend_runs_the_seeds_config_as_is(tmp_path):
    """On Ascend the Trainer gets the seeds' config, only renamed for MindFormers 1.9; no CPU pieces."""
    from mathtune_pipeline.mindformers import dialect
    from mathtune_pipeline.stages import train

    spec = typed({"model": {"family": "llama3-8b", "checkpoint": "/data/llama3-8B.ckpt"},
                          "data": {"seqLength": 512}, "training": {"epochs": 5, "batchSize": 32},
                          "resources": {"npusPerNode": 4, "nodes": 1, "parallel": {
                              "dataParallel": 1, "modelParallel": 4, "pipelineStage": 1, "microBatchNum": 1}}})
    p = train.plan(spec, tmp_path, rows=97450, base_checkpoint=tmp_path / "llama3-8B.ckpt",
                   data={"seqLength": 512})
    cfg = p["config"]
    assert p["steps_per_epoch"] == 97450 // 32 == 3045   # seed 000's save_checkpoint_steps
    assert cfg == dialect.adapt(p["seeds_config"])
    assert cfg["context"]["device_target"] == "Ascend" and cfg["runner_wrapper"]["type"] == "MFTrainOneStepCell"
    assert cfg["callbacks"][1]["save_checkpoint_steps"] == 3045
    # Sink mode (the default, seed 000): loops that end on every epoch's end.
    assert cfg["runner_config"]["sink_mode"] is True and cfg["runner_config"]["sink_size"] == 1
    assert p["cadence"] == checkpoints.Cadence(3045, 1)
    assert cfg["model"]["model_config"]["use_flash_attention"] is True
    assert p["trainable"] == 3_407_872 and p["ranks"] == 4
    assert p["seeds_config"]["train_dataset"]["data_loader"]["dataset_dir"] == str(tmp_path / "tokenize")


def test_train_plan_cpu_profile(tmp_path):
    from mathtune_pipeline.stages import train

    spec = typed({"profile": "cpu", "model": {"family": "tiny-llama"}, "data": {"seqLength": "auto"},
                          "training": {"batchSize": 4},
                          "resources": {"npusPerNode": 2, "nodes": 1, "parallel": {
                              "dataParallel": 2, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    tokens = {"bos_token_id": 128000, "eos_token_id": 128001, "pad_token_id": 128002}
    p = train.plan(spec, tmp_path, rows=200, base_checkpoint=tmp_path / "b.ckpt",
                   data={"seqLength": 128, "tokens": tokens})
    cfg, mc = p["config"], p["config"]["model"]["model_config"]
    assert p["steps_per_epoch"] == 25
    assert cfg["context"]["device_target"] == "CPU" and cfg["runner_wrapper"]["type"] == "CpuTrainOneStepCell"
    assert mc["seq_length"] == 128 and {k: mc[k] for k in tokens} == tokens   # from tokenize's manifest
    assert mc["compute_dtype"] == "float32" and mc["use_flash_attention"] is False
    assert cfg["parallel"]["parallel_mode"] == 0 and cfg["runner_config"]["sink_mode"] is False
    with pytest.raises(SpecError) as err:  # "auto" is for tokenize to resolve
        train.plan(spec, tmp_path, rows=200, base_checkpoint=tmp_path / "b.ckpt")
    assert err.value.field == "spec.data.seqLength"


def test_train_plan_follows_the_batching_tokenize_laid_out(tmp_path):
    """Bucketed rows (tokenize's manifest says so) train as MindFormers'
    dynamic batches, and only with the batch they were ordered for."""
    from mathtune_pipeline.stages import train

    spec = typed({"profile": "cpu", "model": {"family": "tiny-llama"}, "training": {"batchSize": 4},
                          "resources": {"npusPerNode": 2, "nodes": 1, "parallel": {
                              "dataParallel": 2, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    layout = {"mode": "bucketed", "multiple": 8, "batchSize": 4, "dataParallel": 2, "seed": 0, "perRankBatches": True}
    tokens = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3}
    p = train.plan(spec, tmp_path, rows=200, base_checkpoint=tmp_path / "b.ckpt",
                   data={"seqLength": 128, "tokens": tokens, "batching": layout})
    data = p["config"]["train_dataset"]
    assert data["dynamic_batch"] is True and data["pad_token_id"] == [3, -100] and data["num_parallel_workers"] == 1
    assert p["config"]["model"]["model_config"]["is_dynamic"] is True and p["steps_per_epoch"] == 25
    padded = train.plan(spec, tmp_path, rows=200, base_checkpoint=tmp_path / "b.ckpt",
                        data={"seqLength": 128, "tokens": tokens, "batching": {"mode": "padded"}})
    assert "dynamic_batch" not in padded["config"]["train_dataset"]
    for change, field in (({"training": {"batchSize": 8}}, "spec.training.batchSize"),
                          ({"resources": {"npusPerNode": 1, "parallel": {"dataParallel": 1}}},
                           "spec.resources.parallel.dataParallel")):
        other = changed(spec, change)
        with pytest.raises(SpecError) as err:
            train.plan(other, tmp_path, rows=200, base_checkpoint=tmp_path / "b.ckpt",
                       data={"seqLength": 128, "tokens": tokens, "batching": layout})
        assert err.value.field == field and "run tokenize again" in str(err.value)


def test_run_local_refuses_a_bad_run_file_naming_the_field(tmp_path):
    """The run file is parsed by the API model before any stage: a value the
    CRD refuses exits 2 with the field, not a traceback, and nothing is made."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    run = yaml.safe_load((Path(__file__).resolve().parents[4] / "examples" / "run-cpu.yaml").read_text())
    run["spec"]["training"]["epochs"] = 0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(run))
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "run-local", str(tmp_path / "bad.yaml"),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("mathtune-pipeline run-local: spec.training.epochs: "
                                   "Input should be greater than or equal to 1"), proc.stderr
    assert not (tmp_path / "run").exists()
