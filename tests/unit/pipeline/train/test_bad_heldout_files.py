"""An evaluation or held-out file in the wrong format is bad input at evaluate
and predict: exit 2 naming the file and the format expected, before any model
is loaded, and merge's output untouched. The run directory is conftest.laid_out."""
import json

import pytest
import yaml

from tests import stage_result

from .conftest import run_stage

pytestmark = pytest.mark.mindspore

SQUAD_ROW = json.dumps({"context": "The sky is blue.", "question": "What colour is the sky?", "answers": ["blue"]})


def _files(tmp_path, real_fixtures):
    contest = real_fixtures / "contest" / "data_200_random.jsonl"
    (tmp_path / "squad.jsonl").write_text(SQUAD_ROW + "\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 8)
    data = contest.read_bytes()
    (tmp_path / "cut.jsonl").write_bytes(data[: data.index(b"\n", 5000) + 40])  # the last row cut mid-line
    return {"contest": contest, "squad": tmp_path / "squad.jsonl", "binary": tmp_path / "binary.bin",
            "cut": tmp_path / "cut.jsonl"}


def _spec(tmp_path, spec_file, section, uri, fmt):
    doc = yaml.safe_load(spec_file.read_text())
    doc["spec"][section]["dataset"] = {"uri": str(uri), "format": fmt}
    path = tmp_path / f"{section}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("stage, section, name, fmt, expected", [
    ("predict", "prediction", "squad", "contest-jsonl", "no `problem` string"),
    ("predict", "prediction", "binary", "contest-jsonl", "not JSON"),
    ("predict", "prediction", "binary", "mmlu-csv", "UTF-8"),
    ("predict", "prediction", "binary", "alpaca-json", "UTF-8"),
    ("predict", "prediction", "contest", "mmlu-csv", "columns"),
    ("predict", "prediction", "cut", "contest-jsonl", "1 of"),
    ("evaluate", "evaluation", "contest", "squad-jsonl", "context"),
    ("evaluate", "evaluation", "binary", "squad-json", "utf-8"),
    ("evaluate", "evaluation", "squad", "squad-json", "squad-json"),
])
def test_a_file_in_the_wrong_format(tmp_path, laid_out, real_fixtures, stage, section, name, fmt, expected):
    run_dir, spec_file, merged, _ = laid_out
    path = _files(tmp_path, real_fixtures)[name]
    kept, merged_kept = path.read_bytes(), merged.read_bytes()
    proc = run_stage(stage, _spec(tmp_path, spec_file, section, path, fmt), run_dir)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    error = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))["error"]
    assert error.startswith(f"spec.{section}.dataset") and str(path) in error and fmt in error, error
    assert expected in error, error
    assert path.read_bytes() == kept and merged.read_bytes() == merged_kept
    assert not (run_dir / stage).exists()


@pytest.mark.parametrize("stage", ["evaluate", "predict"])
@pytest.mark.parametrize("damage", ["missing", "truncated", "more-ids-than-the-model"])
def test_a_missing_damaged_or_too_large_tokenizer(tmp_path, laid_out, stage, damage):
    from tests.conftest import LLAMA3_TOKENIZER

    run_dir, spec_file, merged, _ = laid_out
    doc = yaml.safe_load(spec_file.read_text())
    tok = tmp_path / "tokenizer.json"
    if damage == "truncated":
        data = LLAMA3_TOKENIZER.read_bytes()
        tok.write_bytes(data[: len(data) // 2])
    elif damage == "more-ids-than-the-model":
        tok = LLAMA3_TOKENIZER  # 128,256 ids; the tiny model has 512
    doc["spec"]["model"]["tokenizer"] = {"uri": str(tok), "format": "hf-json"}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    merged_kept = merged.read_bytes()
    proc = run_stage(stage, spec, run_dir)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    error = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))["error"]
    if damage == "more-ids-than-the-model":
        assert error.startswith("spec.model.tiny.vocabSize:") and "128256" in error, error
    else:
        assert error.startswith("spec.model.tokenizer.uri:") and str(tok) in error, error
    assert merged.read_bytes() == merged_kept and not (run_dir / stage).exists()
