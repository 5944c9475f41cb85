"""The operator reads every stage result the contract allows into status.

tests/fixtures/stage-results-cpu-run.jsonl holds the seven results of a real
CPU run of examples/run-cpu.yaml (run-local, this revision's pipeline), one per
line. They must satisfy docs/stage-result.schema.json, as every result the
pipeline's own tests produce must; read in order, they must fill each status
field the printer columns and `kubectl describe` show, with a summary that
names no missing value.
"""
import json
from pathlib import Path

import pytest

from mathtune_operator import results
from tests import stage_result

RUN = Path(__file__).resolve().parents[2] / "fixtures" / "stage-results-cpu-run.jsonl"
STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"]


def recorded():
    return [json.loads(line) for line in RUN.read_text().splitlines()]


def test_the_recorded_run_keeps_the_contract():
    got = recorded()
    assert [r["stage"] for r in got] == STAGES
    for result in got:
        stage_result.check(result)


def test_a_whole_run_fills_status_results():
    status = {}
    for result in recorded():
        summary, status = results.apply(result["stage"], result, status)
        assert summary and "?" not in summary and "None" not in summary, (result["stage"], summary)
    # What the printer columns (F1, EM, Math-Acc) and describe show.
    for key in ("f1", "em", "mathAccuracy", "bestEpoch", "gatePassed", "trainableParams", "totalParams",
                "lowParamRatio", "passedEpochs", "baseF1", "baseEm"):
        assert key in status, f"status.results lacks {key}: {sorted(status)}"
    recorded_by_stage = {r["stage"]: r for r in recorded()}
    assert status["rows"]["read"] == recorded_by_stage["prepare"]["rows"]["read"] > 0
    assert status["tokenize"]["paddingShare"] == recorded_by_stage["tokenize"]["paddingShare"]
    assert set(status["epochs"]) == {"1", "2"} and all("f1" in row and "accuracy" in row
                                                       for row in status["epochs"].values())


@pytest.mark.parametrize("stage", STAGES)
def test_a_failed_stage_keeps_the_contract_and_its_message(stage):
    failed = stage_result.check({"stage": stage, "ok": False, "error": "spec.data.seqLength: a whole number"})
    assert results.parse(json.dumps(failed), stage)["error"].startswith("spec.data.seqLength")


def test_the_schema_refuses_what_would_blank_a_column():
    report = next(r for r in recorded() if r["stage"] == "report")
    renamed = {("mathAcc" if k == "mathAccuracy" else k): v for k, v in report.items()}
    with pytest.raises(AssertionError, match="mathAccuracy"):
        stage_result.check(renamed)


def test_the_final_progress_line_says_only_what_the_run_found():
    assert results.final_summary({}) == "done"
    assert results.final_summary({"f1": 12.3456}) == "done: F1 12.35"
    assert results.final_summary({"bestEpoch": 3, "mathAccuracy": 0.41549, "gatePassed": False}) == \
        "done: best epoch 3, acc 41.5%, gate failed"


def test_both_readings_of_math_accuracy_reach_status():
    """The careful reader's figure drives the columns; the contest rule's stands beside it, per type too."""
    report = {**next(r for r in recorded() if r["stage"] == "report"),
              "mathAccuracy": 0.24, "mathAccuracyContestRule": 0.09, "baseAccuracyContestRule": 0.0,
              "perTypeContestRule": {"add": 0.175}}
    stage_result.check(report)
    summary, status = results.apply("report", report, {})
    assert (status["mathAccuracy"], status["mathAccuracyContestRule"]) == (0.24, 0.09)
    assert status["baseAccuracyContestRule"] == 0.0 and status["perTypeContestRule"] == {"add": 0.175}
    assert "accuracy 0.2400 (contest rule 0.0900)" in summary


def test_an_export_lists_each_format_in_status():
    """The export stage's result (as the CPU example's run gave it) becomes one row per format; a skipped
    export says why and lists nothing."""
    exported = stage_result.check({
        "stage": "export", "ok": True, "epoch": 20, "formats": ["peft", "hf"], "baseModel": "tiny-llama-base",
        "artifacts": [{"format": "peft", "location": "export/peft", "bytes": 348847, "files": 3,
                       "sha256": "e7fcf3646668c16ba969c7d42a04ee1435787d9fcd7a7254db3b1acc96c1c66d"},
                      {"format": "hf", "location": "export/hf", "bytes": 3211186, "files": 6,
                       "destination": "s3://models/run-cpu/hf/",
                       "sha256": "329e36720d5518afdd8807bb6157327043aa454f045f11fe859980f647fdcbf8"}]})
    summary, status = results.apply("export", exported, {"bestEpoch": 20})
    assert summary == "epoch 20 exported as peft (348.8 KB), hf (3.2 MB)"
    assert status["exports"] == [
        {"format": "peft", "epoch": 20, "location": "export/peft", "bytes": 348847, "files": 3,
         "sha256": "e7fcf3646668c16ba969c7d42a04ee1435787d9fcd7a7254db3b1acc96c1c66d"},
        {"format": "hf", "epoch": 20, "location": "export/hf", "destination": "s3://models/run-cpu/hf/",
         "bytes": 3211186, "files": 6, "sha256": "329e36720d5518afdd8807bb6157327043aa454f045f11fe859980f647fdcbf8"}]
    assert status["bestEpoch"] == 20
    skipped = stage_result.check({"stage": "export", "ok": True, "skipped": True,
                                  "reason": "no epoch passed the original-ability gate"})
    summary, status = results.apply("export", skipped, {})
    assert summary == "not exported: no epoch passed the original-ability gate" and "exports" not in status
    with pytest.raises(AssertionError, match="sha256"):
        stage_result.check({**exported, "artifacts": [{**exported["artifacts"][0], "sha256": "short"}]})


def test_reused_data_reaches_status_results_data_cache_as_the_crd_declares_it():
    """prepare's and tokenize's `cacheKey` and `reused` (the work volume's data recipe cache) become
    status.results.dataCache, which the CRD's status schema and the status model declare; the stage
    rows say whose data was reused."""
    import jsonschema
    from mathtune_api.status import Results

    from .conftest import schema

    by_stage = {r["stage"]: r for r in recorded()}
    key = "768d573847ad7e2b"
    prepare = stage_result.check({**by_stage["prepare"], "cacheKey": key, "reused": {"key": key, "from": "sweep-lr-1"}})
    tokenize = stage_result.check({**by_stage["tokenize"], "cacheKey": key})
    summary, status = results.apply("prepare", prepare, {})
    assert summary.endswith("; reused data of run sweep-lr-1") and "?" not in summary
    assert status["dataCache"] == {"key": key, "prepareReused": True, "builtBy": "sweep-lr-1"}
    summary, status = results.apply("tokenize", tokenize, status)
    assert "reused" not in summary
    assert status["dataCache"] == {"key": key, "prepareReused": True, "tokenizeReused": False, "builtBy": "sweep-lr-1"}
    declared = schema()["properties"]["status"]["properties"]["results"]["properties"]["dataCache"]
    assert set(status["dataCache"]) <= set(declared["properties"])
    jsonschema.validate(status["dataCache"], declared)
    assert Results.model_validate(status).data_cache.built_by == "sweep-lr-1"
    # A run that built its own data: the key, nobody named; an older pipeline's result: nothing.
    _, built = results.apply("prepare", {k: v for k, v in prepare.items() if k != "reused"}, {})
    _, built = results.apply("tokenize", tokenize, built)
    assert built["dataCache"] == {"key": key, "prepareReused": False, "tokenizeReused": False}
    assert "dataCache" not in results.apply("prepare", by_stage["prepare"], {})[1]
