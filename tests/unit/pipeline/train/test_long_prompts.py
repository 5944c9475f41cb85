"""Prompts longer than the training seq_length: run whole, in a window sized for them,
on the real tiny model on CPU; one the model cannot hold is bad input (exit 2).

The run directory is laid out as the earlier stages leave it (conftest.laid_out):
the tiny model was rendered with seq_length SEQ (32)."""
import json

import pytest
import yaml

from tests import stage_result

from .conftest import SEQ, run_stage

pytestmark = pytest.mark.mindspore

QUESTION = "计算 1 + 2 等于多少？"


def test_a_prompt_longer_than_training_keeps_its_header(laid_out, monkeypatch):
    from mathtune_pipeline.data.templates import Template
    from mathtune_pipeline.mindformers import candidates, inference
    from mathtune_pipeline.spec import load_spec

    run_dir, spec_file, merged, _ = laid_out
    spec, _ = load_spec(spec_file)
    template = Template(spec.data.template.name, spec.data.template.system_prompt)
    prompt = template.render(" ".join([QUESTION] * 12), "", "")[0]
    generator = candidates.Generator(spec, run_dir)
    full = generator.encode([prompt])[0]
    header = generator.encode([template.render("", "", "")[0].split("\n")[0]])[0][:-1]
    assert len(full) > SEQ and len(header) > 3 and full[:len(header)] == header

    given = []
    real = inference.last_logits

    def spy(network, input_ids, lengths):  # the real model runs; only its inputs are recorded
        given.append((input_ids[0].copy(), int(lengths[0])))
        return real(network, input_ids, lengths)

    monkeypatch.setattr(inference, "last_logits", spy)
    generator.generate(candidates.Candidate("1", merged), [prompt], 2, field="spec.prediction.dataset.uri")
    ids, length = given[0]
    assert length == len(full) and list(ids[:len(full)]) == full  # the header and the question, whole
    assert len(ids) >= len(full) + 2 and len(ids) % candidates.WINDOW_MULTIPLE == 0


def test_window_is_the_prompts_not_training_s():
    from mathtune_pipeline.errors import SpecError
    from mathtune_pipeline.mindformers import candidates

    assert candidates.window([[1] * 700, [1] * 10], 20, 8192, "f") == 768
    assert candidates.window([[1] * 500], 12, 512, "f") == 512
    with pytest.raises(SpecError) as err:
        candidates.window([[1] * 10, [1] * 501], 12, 512, "spec.prediction.dataset.uri")
    assert err.value.field == "spec.prediction.dataset.uri"
    assert "512" in str(err.value) and "row 2" in str(err.value)


def test_a_prompt_the_model_cannot_hold_is_bad_input(laid_out, tmp_path):
    run_dir, spec_file, _, _ = laid_out
    heldout = tmp_path / "long.jsonl"
    heldout.write_text(json.dumps({"problem": " ".join([QUESTION] * 400), "solution": "3"}, ensure_ascii=False)
                       + "\n", encoding="utf-8")
    doc = yaml.safe_load(spec_file.read_text())
    doc["spec"]["prediction"]["dataset"]["uri"] = str(heldout)
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump(doc, allow_unicode=True))
    proc = run_stage("predict", spec, run_dir)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    error = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))["error"]
    assert "spec.prediction.dataset.uri" in error and "512" in error, error
    assert not (run_dir / "predict").exists()
