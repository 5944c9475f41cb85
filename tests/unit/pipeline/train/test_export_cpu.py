"""export, proved by the ecosystem's own readers: the CPU training's checkpoint
exported as a Hugging Face model and a PEFT adapter, loaded by `transformers`
and `peft` (tests/readers.py, a venv of their own), give MindSpore's logits
and greedy tokens on the same ids."""
import json
import shutil

import numpy as np
import pytest
import yaml

from mathtune_api.spec_scoring import Export
from mathtune_pipeline.artifacts import sha256_file
from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import inference, render
from mathtune_pipeline.spec import load_spec
from mathtune_pipeline.stages import export as export_stage
from tests import readers

from .conftest import SEQ, last_json, run_stage, write_spec
from .test_scoring_stages_cpu import _tokenizer

pytestmark = pytest.mark.mindspore

# float32 on both sides; the two frameworks sum in other orders (measured ~1e-5 on the demo model).
LOGITS_TOLERANCE = 1e-4
SHARD = "20KB"  # the tiny model in several shards, so the index is what transformers reads


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """A copy of the trained run, merged, reported (no scoring: every epoch passes) and exported."""
    src, _, _ = trained
    root = tmp_path_factory.mktemp("export")
    run_dir = root / "run"
    shutil.copytree(src / "train", run_dir / "train")
    shutil.copytree(src / "base", run_dir / "base")
    spec = write_spec(root / "run.yaml",
                      model={"tokenizer": {"uri": str(_tokenizer(root / "tokenizer.json")), "format": "hf-json"}},
                      evaluation={"enabled": False}, prediction={"enabled": False},
                      export={"formats": ["peft", "hf"], "maxShardSize": SHARD, "baseModel": "tiny-llama-base"})
    for stage in ("merge", "report", "export"):
        proc = run_stage(stage, spec, run_dir)
        assert proc.returncode == 0, f"{stage}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, spec, last_json(proc.stdout)


def _mindspore_logits(run_dir, checkpoint, ids):
    config = yaml.safe_load((run_dir / "train" / "finetune.yaml").read_text())
    net = inference.load(render.inference_config(config, run_mode="predict", load_checkpoint="", max_new_tokens=1,
                                                 use_past=False, keep_lora=False), checkpoint)
    padded = np.zeros((len(ids), SEQ), np.int32)
    padded[:, :ids.shape[1]] = ids
    return net, padded


def _greedy(net, prompt, new_tokens):
    """MindSpore's greedy tokens: the argmax at the last real position, appended, repeated."""
    row = list(prompt)
    for _ in range(new_tokens):
        ids = np.zeros((1, SEQ), np.int32)
        ids[0, :len(row)] = row
        row.append(int(inference.logits(net, ids)[0, len(row) - 1].argmax()))
    return row[len(prompt):]


def test_the_result_lists_each_format_with_size_and_digest(exported):
    run_dir, _, result = exported
    # No scoring: every epoch passes with equal scores, and the report takes the earliest.
    assert result["epoch"] == 1 and result["formats"] == ["peft", "hf"]
    by_format = {a["format"]: a for a in result["artifacts"]}
    for fmt, where in (("peft", run_dir / "export" / "peft"), ("hf", run_dir / "export" / "hf")):
        sums = (where / "SHA256SUMS").read_text().splitlines()
        listed = {line.split("  ")[1]: line.split("  ")[0] for line in sums}
        assert by_format[fmt]["files"] == len(listed) and by_format[fmt]["location"] == f"export/{fmt}"
        assert by_format[fmt]["bytes"] == sum((where / name).stat().st_size for name in listed)
        assert all(sha256_file(where / name) == digest for name, digest in listed.items())
        assert by_format[fmt]["sha256"] == sha256_file(where / "SHA256SUMS")
    hf = run_dir / "export" / "hf"
    index = json.loads((hf / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1, "the small shard size should have split the model"
    config = json.loads((hf / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 2
    adapter = json.loads((run_dir / "export" / "peft" / "adapter_config.json").read_text())
    assert (adapter["peft_type"], adapter["r"], adapter["lora_alpha"]) == ("LORA", 8, 16.0)
    assert adapter["target_modules"] == ["q_proj", "v_proj"] and adapter["base_model_name_or_path"] == "tiny-llama-base"
    card = (hf / "README.md").read_text()
    assert "library_name: transformers" in card and "base_model: tiny-llama-base" in card and "epoch 1" in card


def test_transformers_and_peft_give_mindspores_logits_and_tokens(exported, tmp_path):
    run_dir, _, result = exported
    base_hf = tmp_path / "base-hf"
    # The base converted to Hugging Face's layout the same way, for PEFT to load the adapter on.
    spec, _ = load_spec(str(run_dir.parent / "run.yaml"))
    export_stage.export_hf(base_hf, next((run_dir / "base").glob("*.ckpt")), spec,
                           run_dir.parent / "tokenizer.json", 10**9, "")
    ids = np.random.default_rng(0).integers(4, 500, size=(3, 12)).astype(np.int32)
    got = readers.read(ids, 6, tmp_path, merged=run_dir / "export" / "hf",
                       peft=f"{base_hf},{run_dir / 'export' / 'peft'}")
    net, padded = _mindspore_logits(run_dir, run_dir / "merge" / f"epoch_{result['epoch']}" / "merged.ckpt", ids)
    want = inference.logits(net, padded)[:, :ids.shape[1]]
    base_net, _ = _mindspore_logits(run_dir, next((run_dir / "base").glob("*.ckpt")), ids)
    assert np.abs(inference.logits(base_net, padded)[:, :ids.shape[1]] - want).max() > 1e-3, \
        "the adapter should change the model, or the comparison proves nothing"
    for kind in ("merged", "peft"):
        diff = np.abs(np.array(got[kind]["logits"]) - want).max()
        assert diff < LOGITS_TOLERANCE, f"{kind}: logits differ from MindSpore's by {diff}"
        assert got[kind]["generated"] == _greedy(net, ids[0].tolist(), 6), kind


def test_a_destination_that_cannot_be_written_fails_naming_it_and_keeps_everything(exported, tmp_path):
    run_dir, spec_file, _ = exported
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    doc = yaml.safe_load(spec_file.read_text())
    doc["spec"]["export"]["destination"] = str(blocker / "models")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    merged = (run_dir / "merge" / "epoch_2" / "merged.ckpt").read_bytes()
    proc = run_stage("export", bad, run_dir)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert last_json(proc.stdout)["error"].startswith("spec.export.destination: a directory this run can write")
    assert (run_dir / "merge" / "epoch_2" / "merged.ckpt").read_bytes() == merged
    assert (run_dir / "export" / "hf" / "config.json").is_file()  # the local export stays


def test_a_family_without_a_name_map_is_refused_before_anything_is_written():
    with pytest.raises(SpecError) as err:
        export_stage.names.hf_name("mixtral-8x7b", "model.layers.0.attention.wq.weight")
    assert err.value.field == "spec.model.family" and "'mixtral-8x7b' has none" in str(err.value)


def test_an_epoch_merge_did_not_keep_is_refused_naming_the_field():
    with pytest.raises(SpecError) as err:
        export_stage.choose_epoch(Export(epoch=7), {"bestEpoch": 2}, {"1": {}, "2": {}})
    assert err.value.field == "spec.export.epoch" and "1, 2" in str(err.value)
