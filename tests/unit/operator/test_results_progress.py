"""Reading what stages print: result JSON and progress lines."""
import json

import pytest

from mathtune_operator import observe, progress, results

REAL_PREPARE = {"stage": "prepare", "ok": True, "rows": {
    "read": 809993, "bad": 0, "deduped": 548942, "duplicates": 261051, "sampled": 97450, "other": 0,
    "classified": {"english": 9993, "add": 90113, "subtract": 89366, "multiply": 89902, "divide": 89966,
                   "sqrt": 39227, "power": 39207, "equation": 40080, "discount": 6275, "mean": 19709,
                   "mass": 100, "area": 8665, "sales": 6266, "simplify": 45, "function": 20028}}}


def test_parse_plain_result_and_log_tail():
    assert results.parse(json.dumps(REAL_PREPARE), "prepare")["rows"]["deduped"] == 548942
    tail = "Traceback...\nsomething\n" + json.dumps({"stage": "train", "ok": False, "error": "boom"})
    assert results.parse(tail, "train")["error"] == "boom"
    with pytest.raises(results.ResultError, match="no termination message"):
        results.parse("", "train")
    with pytest.raises(results.ResultError, match="not a JSON object"):
        results.parse("Killed", "train")


def test_results_accumulate_over_the_stages():
    summary, out = results.apply("prepare", REAL_PREPARE, {})
    assert out["rows"]["classified"]["simplify"] == 45 and out["rows"]["sampled"] == 97450
    assert out["rows"]["duplicates"] == 809993 - 548942
    assert "548942" in summary
    _, out = results.apply("tokenize", {"rows": 97450, "seqLength": 512, "truncated": 0, "paddingShare": 0.83,
                                        "shards": 1}, out)
    _, out = results.apply("train", {"epochs": 5, "steps": 15225, "finalLoss": 0.2031,
                                     "trainableParams": 3407872, "totalParams": 8033669120,
                                     "checkpoints": [1, 2, 3, 4, 5]}, out)
    assert out["lowParamRatio"] == pytest.approx(3407872 / 8033669120)
    _, out = results.apply("evaluate", {"base": {"f1": 59.87, "em": 44.17},
                                        "epochs": {"1": {"f1": 60.1, "em": 45.0}, "2": {"f1": 61.5, "em": 44.0}}},
                           out)
    assert out["f1"] == 61.5 and out["baseEm"] == 44.17 and out["epochs"]["1"]["em"] == 45.0
    _, out = results.apply("predict", {"epochs": {"1": {"accuracy": 0.7, "perType": {"add": 0.9}},
                                                  "2": {"accuracy": 0.8, "perType": {"add": 0.95}}}}, out)
    assert out["mathAccuracy"] == 0.8 and out["perType"] == {"add": 0.95}
    summary, out = results.apply("report", {"bestEpoch": 2, "f1": 61.5, "em": 44.0, "mathAccuracy": 0.8,
                                            "perType": {"add": 0.95, "mass": 0.5}, "gatePassed": True,
                                            "trainableParams": 3407872, "totalParams": 8033669120,
                                            "lowParamRatio": 0.000424, "artifacts": {"report": "/data/r.json"},
                                            "passedEpochs": [1, 2], "baseAccuracy": 0.09},
                                 out)
    assert out["passedEpochs"] == [1, 2] and out["baseAccuracy"] == 0.09
    assert out["bestEpoch"] == 2 and out["gatePassed"] is True and out["artifacts"]["report"] == "/data/r.json"
    assert "gate passed" in summary and "0.0424%" in summary
    # Every integer field stays an integer (the CRD declares them so).
    assert isinstance(out["rows"]["read"], int) and isinstance(out["trainableParams"], int)


def test_progress_newest_good_line_wins():
    log = "\n".join([
        'mathtune-progress {"epoch":1,"epochs":5,"step":4,"steps":234,"loss":1.361,"samplesPerSecond":4.91,'
        '"etaSeconds":3796}',
        "2026-01-01 INFO something else",
        '[rank0] mathtune-progress {"epoch":1,"epochs":5,"step":6,"steps":234,"loss":1.2}',
        'mathtune-progress {"epoch":1,"epo',  # cut off mid-write
    ])
    line = progress.newest(log)
    assert line["step"] == 6 and line["loss"] == 1.2
    out = progress.to_status("train", line, "2026-01-01T00:00:00Z")
    assert out["summary"] == "train epoch 1/5 step 6/234 0.5%"
    assert out["percent"] == pytest.approx(100 * 6 / 1170, abs=0.1)
    assert progress.newest("no progress here") is None


def test_throttle():
    t = progress.Throttle(30)
    assert t.due("a", 100.0) and not t.due("a", 110.0) and t.due("b", 110.0) and t.due("a", 131.0)


def _pod(name, phase, code=None, message="", index="0", finished="2026-01-01T00:00:01Z"):
    status = {"phase": phase}
    if code is not None:
        status["containerStatuses"] = [{"name": "stage", "state": {"terminated": {
            "exitCode": code, "message": message, "finishedAt": finished}}}]
    return {"metadata": {"name": name, "annotations": {"batch.kubernetes.io/job-completion-index": index}},
            "status": status}


def _job(conds=(), failed=0, suspend=False):
    return {"spec": {"suspend": suspend}, "status": {"failed": failed, "startTime": "2026-01-01T00:00:00Z",
                                                     "conditions": [{"type": t, "status": "True", "reason": r}
                                                                    for t, r in conds]}}


def test_outcome_of_jobs():
    ok = json.dumps({"stage": "train", "ok": True})
    seen = observe.outcome(_job([("Complete", "")]), [_pod("p-1", "Succeeded", 0, ok, index="1"),
                                                      _pod("p-0", "Succeeded", 0, ok + " ", index="0")])
    assert seen["state"] == "Succeeded" and seen["message"] == ok + " "  # rank 0's
    err = json.dumps({"stage": "train", "ok": False, "error": "data.source.uri: a readable file"})
    seen = observe.outcome(_job([("Failed", "PodFailurePolicy")], failed=1), [_pod("p", "Failed", 2, err)])
    assert seen["state"] == "Failed" and seen["message"] == "data.source.uri: a readable file"
    assert seen["reason"] == "PodFailurePolicy" and seen["attempts"] == 1
    seen = observe.outcome(_job(failed=1), [_pod("a", "Failed", 1, "OOM", finished="2026-01-01T00:00:01Z"),
                                            _pod("b", "Running")])
    assert seen["state"] == "Retrying" and seen["attempts"] == 2 and seen["message"] == "OOM"
    assert observe.outcome(_job(suspend=True), [])["state"] == "Suspended"
    assert observe.outcome(_job(), [_pod("b", "Running")])["state"] == "Running"


def test_evaluate_progress_counts_models_and_questions():
    line = progress.newest('mathtune-progress {"stage":"evaluate","model":"epoch 2","epoch":3,"epochs":6,'
                           '"step":10,"steps":20}')
    out = progress.to_status("evaluate", line, "2026-01-01T00:00:00Z")
    assert out["summary"] == "evaluate epoch 2 model 3/6 question 10/20 41.7%"
    assert out["percent"] == pytest.approx(100 * (2 * 20 + 10) / 120, abs=0.1)


def test_a_resumed_training_says_where_it_resumed():
    train = {"epochs": 20, "steps": 1520, "finalLoss": 0.41, "trainableParams": 98304, "totalParams": 622720,
             "checkpoints": list(range(10, 21))}
    fresh, _ = results.apply("train", train, {})
    again, _ = results.apply("train", {**train, "resumedFrom": {"epoch": 3, "checkpoint": "llama_rank_0-3_76.ckpt",
                                                               "step": 228}}, {})
    assert "resumed" not in fresh
    assert again == fresh + ", resumed after epoch 3 (step 228)"
