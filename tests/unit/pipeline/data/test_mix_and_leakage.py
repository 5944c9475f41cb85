"""spec.data.mix and spec.data.leakage through the prepare stage's command line.

Rows come from the project's synthetic generator (contest-shaped) and small
SQuAD-form files written here, so the held-out overlap is known exactly.
"""
import json
import random

import pytest

from mathtune_pipeline.data import leakage
from mathtune_pipeline.data.synth import distinct_rows

from .test_prepare_stage import rows_of
from tests.specs import whole


def _write_contest(path, rows):
    path.write_text("".join(json.dumps({"problem": q, "solution": a}, ensure_ascii=False) + "\n" for q, a in rows),
                    encoding="utf-8")
    return path


def _write_squad(path, examples):
    path.write_text("".join(json.dumps({"context": c, "question": q, "answers": [a]}) + "\n"
                            for c, q, a in examples), encoding="utf-8")
    return path


PASSAGES = [(f"Passage {i}: the river number {i} is {100 + i} kilometres long.", f"How long is river {i}?",
             f"{100 + i} kilometres") for i in range(40)]


@pytest.fixture
def inputs(tmp_path):
    rng = random.Random(3)
    train = distinct_rows("add", 60, rng)
    held = distinct_rows("subtract", 20, rng)
    return {
        "train": _write_contest(tmp_path / "train.jsonl", train),
        "heldout": _write_contest(tmp_path / "heldout.jsonl", held),
        # The mix overlaps predict's rows: 5 of them as they are, 3 written another way.
        "mix": _write_contest(tmp_path / "mix.jsonl", held[:5] + [(q.replace(" ", "  ").replace("计算", "计算："), a)
                                                                    for q, a in held[5:8]]
                              + distinct_rows("multiply", 30, rng)),
        "squad_eval": _write_squad(tmp_path / "eval.jsonl", PASSAGES[:10]),
        "squad_replay": _write_squad(tmp_path / "replay.jsonl", PASSAGES[10:]),
        "train_rows": train, "held_rows": held,
    }


def _spec(inputs, mix, leakage_mode="drop"):
    return {"source": {"uri": str(inputs["train"]), "format": "contest-jsonl"}, "dedupe": False,
            "mix": mix, "leakage": leakage_mode}


def _run(tmp_path, inputs, data):
    """prepare with evaluate's and predict's sets named, as a whole spec names them."""
    import yaml

    from mathtune_pipeline.cli import main
    from tests import stage_result

    spec = {"data": data, "storage": {"dataPath": str(tmp_path)},
            "evaluation": {"dataset": {"uri": str(inputs["squad_eval"]), "format": "squad-jsonl"}},
            "prediction": {"dataset": {"uri": str(inputs["heldout"]), "format": "contest-jsonl"}}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                                        "metadata": {"name": "t"}, "spec": whole(spec)}))
    result_file = tmp_path / "result.json"
    code = main(["prepare", "--spec", str(tmp_path / "run.yaml"), "--run-dir", str(tmp_path / "run"),
                 "--result-file", str(result_file)])
    return code, stage_result.check(json.loads(result_file.read_text())), tmp_path / "run"


def test_a_mix_is_drawn_at_its_share_and_counted(tmp_path, inputs):
    code, result, run_dir = _run(tmp_path, inputs, _spec(inputs, [
        {"name": "replay", "source": {"uri": str(inputs["squad_replay"]), "format": "squad-jsonl"}, "share": 0.25}]))
    assert code == 0, result
    # 60 main rows are 75% of the set: 20 replay rows, asked as evaluate asks SQuAD.
    assert result["mix"] == [{"name": "replay", "drawn": 20, "rows": 20}]
    assert result["rows"]["sampled"] == 60 and result["rows"]["trained"] == 80
    rows = rows_of(run_dir)
    replay = [r for r in rows if r["type"] == "replay"]
    assert len(rows) == 80 and len(replay) == 20
    assert all(r["prompt"].startswith("Read the passage") and r["response"].endswith("kilometres") for r in replay)
    assert result["leakage"] == {"mode": "drop", "exact": 0, "near": 0, "dropped": 0}
    # The same spec draws the same rows.
    again = tmp_path / "again"
    again.mkdir()
    for name in ("train", "heldout", "squad_eval", "squad_replay"):
        (again / inputs[name].name).write_bytes(inputs[name].read_bytes())
    moved = {k: (again / v.name if hasattr(v, "name") else v) for k, v in inputs.items()}
    _run(again, moved, _spec(moved, [{"name": "replay", "source": {"uri": str(moved["squad_replay"]),
                                                                     "format": "squad-jsonl"}, "share": 0.25}]))
    assert [r for r in rows_of(again / "run") if r["type"] == "replay"] == replay


def test_mix_rows_that_predict_will_score_are_dropped(tmp_path, inputs):
    code, result, run_dir = _run(tmp_path, inputs, _spec(inputs, [
        {"name": "general", "source": {"uri": str(inputs["mix"]), "format": "contest-jsonl"}, "count": 38}]))
    assert code == 0, result
    leak = result["leakage"]
    assert (leak["exact"], leak["near"], leak["dropped"]) == (5, 3, 8)
    assert leak["bySource"] == {"spec.data.mix[0]": 8} and leak["against"] == {"spec.prediction.dataset": 8}
    assert result["mix"] == [{"name": "general", "drawn": 38, "rows": 30}]
    trained = {json.loads(json.dumps(r))["prompt"] for r in rows_of(run_dir)}
    assert not any(q in prompt for q, _ in inputs["held_rows"][:8] for prompt in trained)


def test_fail_stops_prepare_naming_the_rows_and_their_source(tmp_path, inputs):
    code, result, run_dir = _run(tmp_path, inputs, _spec(inputs, [
        {"source": {"uri": str(inputs["mix"]), "format": "contest-jsonl"}, "count": 38}], "fail"))
    assert code == 2 and result["ok"] is False
    assert result["error"].startswith("spec.data.mix[0]: ")
    assert "8 of its 38 training rows" in result["error"] and "spec.prediction.dataset" in result["error"]
    assert "5 exact, 3 near-duplicates" in result["error"]
    assert not (run_dir / "prepare" / "train.jsonl").exists()


def test_warn_keeps_the_rows_and_counts_them(tmp_path, inputs):
    code, result, _ = _run(tmp_path, inputs, _spec(inputs, [
        {"source": {"uri": str(inputs["mix"]), "format": "contest-jsonl"}, "count": 38}], "warn"))
    assert code == 0 and result["leakage"]["dropped"] == 0 and result["leakage"]["exact"] == 5
    assert result["mix"][0]["rows"] == 38


def test_main_rows_that_predict_will_score_are_dropped_too(tmp_path, inputs):
    inputs["train"].write_text(inputs["train"].read_text(encoding="utf-8") + inputs["heldout"].read_text(
        encoding="utf-8").splitlines(keepends=True)[0], encoding="utf-8")
    code, result, _ = _run(tmp_path, inputs, _spec(inputs, []))
    assert code == 0 and result["leakage"]["bySource"] == {"spec.data.source": 1}
    assert result["rows"]["sampled"] == 60


def test_near_duplicates_need_the_same_numbers():
    held = leakage.Heldout.of("set", ["计算 12.50 + 5 等于多少？"])
    assert held.match("计算 12.5 + 5 等于多少？") == "exact"       # number formatting
    assert held.match("计算 １２.５ + ５ 等于多少？") == "exact"     # full-width digits
    assert held.match("请计算 12.5 + 5 等于多少") == "near"          # the same question, worded a little apart
    assert held.match("计算 12.5 + 6 等于多少？") is None             # another number
    assert held.match("计算 5 + 12.5 等于多少？") is None             # the numbers in another order


def test_a_run_whose_every_row_is_scored_names_the_leakage_check(tmp_path, inputs):
    """Training on the prediction set itself: prepare says the check dropped every row, and how to keep them."""
    inputs["train"].write_bytes(inputs["heldout"].read_bytes())
    code, result, _ = _run(tmp_path, inputs, _spec(inputs, []))
    assert code == 2
    assert "the leakage check dropped all 20 sampled rows" in result["error"]
    assert "spec.data.leakage: warn keeps them" in result["error"]
