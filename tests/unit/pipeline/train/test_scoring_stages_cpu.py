"""evaluate, predict and report on the CPU training's merged checkpoints: real generation, real scores."""
import json

import pytest
import yaml

from mathtune_pipeline.scoring import math_accuracy
from mathtune_pipeline.stages import demo_data

from .conftest import last_json, run_stage, write_spec

pytestmark = pytest.mark.mindspore


def _tokenizer(path):
    """A small BPE tokenizer.json (ids < the tiny model's 512), trained here with `tokenizers`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = [c + " " + q + " " + a for c, q, a in demo_data.passage_sets()["evaluation"]] + ["计算 1 + 2 等于多少？ 3"] * 5
    tok.train_from_iterator(text, trainer)
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory, real_fixtures):
    run_dir, _, _ = trained
    data = tmp_path_factory.mktemp("data")
    squad_file = data / "squad.jsonl"
    demo_data.write_squad_small(squad_file)
    spec = write_spec(
        run_dir / "score.yaml",
        model={"tokenizer": {"uri": str(_tokenizer(data / "tokenizer.json")), "format": "hf-json"}},
        evaluation={"dataset": {"uri": str(squad_file), "format": "squad-jsonl"}, "maxSamples": 10,
                    "maxNewTokens": 6, "gate": {"mode": "absolute", "f1": 0.0, "em": 0.0}},
        prediction={"dataset": {"uri": str(real_fixtures / "contest" / "data_200_random.jsonl"),
                                "format": "contest-jsonl"}, "maxSamples": 10, "maxNewTokens": 8})
    if not (run_dir / "merge").exists():
        assert run_stage("merge", spec, run_dir).returncode == 0
    out = {}
    for stage in ("evaluate", "predict", "report"):
        if stage == "report":
            # The gate exactly at epoch 2's real scores: epoch 2 passes, epoch 1
            # passes only if it scored as well, so the report's choice follows
            # from the numbers rather than from a gate nothing can fail.
            second = out["evaluate"][0]["epochs"]["2"]
            gate = {"mode": "absolute", "f1": second["f1"], "em": second["em"]}
            spec = write_spec(run_dir / "report.yaml", model={"tokenizer": {"uri": str(data / "tokenizer.json"),
                                                                            "format": "hf-json"}},
                              evaluation={"dataset": {"uri": str(squad_file), "format": "squad-jsonl"},
                                          "maxSamples": 10, "maxNewTokens": 6, "gate": gate},
                              prediction={"dataset": {"uri": str(real_fixtures / "contest" / "data_200_random.jsonl"),
                                                      "format": "contest-jsonl"}, "maxSamples": 10, "maxNewTokens": 8})
        proc = run_stage(stage, spec, run_dir)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out[stage] = (last_json(proc.stdout), proc.stdout)
    return run_dir, spec, out


def test_evaluate_scores_base_and_every_epoch(scored):
    """The base model and both epochs were run (this run's first evaluate computes the base), and each
    one's F1/EM is MindFormers' own EmF1Metric on the answers written beside them, against the first gold
    answer (answerRule first)."""
    from tests.unit.pipeline.scoring.test_squad import _mindformers_metric

    run_dir, _, out = scored
    result, stdout = out["evaluate"]
    assert set(result["epochs"]) == {"1", "2"} and result["count"] == 10
    assert result["baseSource"] == "computed"
    for key, scores in (("base", result["base"]), ("1", result["epochs"]["1"]), ("2", result["epochs"]["2"])):
        rows = [json.loads(line) for line in (run_dir / "evaluate" / f"{key}.jsonl").read_text().splitlines()]
        assert len(rows) == 10, key
        want = _mindformers_metric([r["prediction"] for r in rows], [r["answers"][0] for r in rows])
        assert (scores["f1"], scores["em"]) == (pytest.approx(want["F1"], abs=1e-9), pytest.approx(want["Em"], abs=1e-9)), key
    assert any(line.startswith("mathtune-progress ") and '"stage":"evaluate"' in line for line in stdout.splitlines())


def test_base_scores_are_computed_once_and_reused(scored):
    run_dir, spec, _ = scored
    proc = run_stage("evaluate", spec, run_dir)
    assert proc.returncode == 0
    again = last_json(proc.stdout)
    assert again["baseSource"] == "cache"
    assert again["base"] == json.loads((run_dir / "evaluate" / "scores.json").read_text())["base"]


def test_predict_writes_mindformers_form_and_scores_per_type(scored):
    run_dir, _, out = scored
    result, _ = out["predict"]
    assert result["kind"] == "math" and result["count"] == 10 and set(result["epochs"]) == {"1", "2"}
    texts = math_accuracy.read_predict_output(run_dir / "predict" / "2" / "predictions.txt")
    assert len(texts) == 10 and all("### Response:" in t for t in texts)  # prompt echoed, as MindFormers does
    full = json.loads((run_dir / "predict" / "scores.json").read_text())
    assert full["2"]["count"] == 10 and abs(full["2"]["accuracy"] - result["epochs"]["2"]["accuracy"]) < 1e-4
    assert set(full["2"]["perType"]) <= {"add", "subtract", "multiply", "divide", "power", "sqrt", "equation",
                                         "mean", "discount", "area", "function", "mass", "sales"}
    # The three figures: the careful reader's and the contest rule's against the dataset's
    # references, and the reader's against the exact answers.
    contest = full["2"]["contestRule"]
    assert set(contest["perType"]) == set(full["2"]["perType"]) and 0 <= contest["correct"] <= 10
    assert result["epochs"]["2"]["contestRuleAccuracy"] == pytest.approx(contest["accuracy"], abs=1e-4)
    truth = full["2"]["truth"]
    assert truth["count"] == 10 and set(truth["perType"]) == set(full["2"]["perType"])
    assert result["epochs"]["2"]["truthAccuracy"] == pytest.approx(truth["accuracy"], abs=1e-4)


def test_a_gate_no_epoch_can_pass_fails_the_report_and_names_the_nearest(scored, tmp_path):
    """A gate of F1 and EM 100 (absolute) that the tiny model's answers cannot reach: no epoch passes,
    the best is still reported, and closestToGate gives the epoch and its shortfalls in points."""
    run_dir, spec, out = scored
    doc = yaml.safe_load(spec.read_text())
    doc["spec"]["evaluation"]["gate"] = {"mode": "absolute", "f1": 100.0, "em": 100.0}
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(doc))
    scores = out["evaluate"][0]["epochs"]
    assert all(sc["em"] < 100.0 for sc in scores.values()), "a perfect epoch: the gate could not fail"
    try:
        proc = run_stage("report", strict, run_dir)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        result = last_json(proc.stdout)
    finally:  # the module's other tests read the report the fixture made
        assert run_stage("report", spec, run_dir).returncode == 0
    assert result["gatePassed"] is False and result["passedEpochs"] == [] and result["bestEpoch"] in (1, 2)
    nearest = result["closestToGate"]
    shortfall = {e: max(100.0 - sc["f1"], 100.0 - sc["em"]) for e, sc in scores.items()}
    assert shortfall[str(nearest["epoch"])] == min(shortfall.values())
    chosen = scores[str(nearest["epoch"])]
    assert (nearest["f1Short"], nearest["emShort"]) == (pytest.approx(100.0 - chosen["f1"], abs=1e-3),
                                                        pytest.approx(100.0 - chosen["em"], abs=1e-3))
    assert result["reason"]


def test_report_picks_an_epoch_and_draws(scored):
    run_dir, _, out = scored
    result, _ = out["report"]
    scores = out["evaluate"][0]["epochs"]
    passing = sorted(int(e) for e, sc in scores.items() if sc["f1"] >= scores["2"]["f1"] and sc["em"] >= scores["2"]["em"])
    assert 2 in passing and result["passedEpochs"] == passing
    assert result["gatePassed"] is True and result["bestEpoch"] in passing
    assert result["lowParamRatio"] == pytest.approx(result["trainableParams"] / result["totalParams"])
    for name in ("loss", "accuracyPerType", "squadGate", "forgettingCurve"):
        png = run_dir / result["artifacts"][name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = str(result["bestEpoch"])
    truth = json.loads((run_dir / "predict" / "scores.json").read_text())[best]["truth"]
    assert result["mathAccuracyTruth"] == pytest.approx(truth["accuracy"], abs=1e-4)
    assert set(result["perTypeTruth"]) == set(truth["perType"]) and result["baseAccuracyTruth"] is not None
    saved = json.loads((run_dir / "report" / "results.json").read_text())
    assert saved["bestEpoch"] == result["bestEpoch"] and set(saved["epochs"]) == {"1", "2"}
