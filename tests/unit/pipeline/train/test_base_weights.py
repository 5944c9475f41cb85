"""Base weights from where the spec says: a path relative to the data path, a
safetensors file or shard directory in Hugging Face's Llama naming (converted
with MindFormers' own converter), http(s) on loopback and a real S3 server
(moto's), sha256-checked. Real MindSpore, the real safetensors package."""
import hashlib
import json

import numpy as np
import pytest
import yaml

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import base_model, checkpoint_io
from tests.specs import typed

from tests import stage_result

from .conftest import run_stage

pytestmark = pytest.mark.mindspore

TINY = {"profile": "cpu", "model": {"family": "tiny-llama",
                                    "tiny": {"numLayers": 1, "hiddenSize": 64, "numHeads": 4, "vocabSize": 512}}}


def _spec(data_path, checkpoint="", sha256=""):
    return typed({**TINY, "model": {**TINY["model"], "checkpoint": checkpoint, "checkpointSha256": sha256},
                  "storage": {"dataPath": str(data_path)}})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model's weights as MindSpore saved them: {name: array} and the file."""
    root = tmp_path_factory.mktemp("tiny")
    path = base_model.ensure(_spec(root), root / "run")
    return checkpoint_io.read(path), path


# Hugging Face's LlamaForCausalLM names, spelled out here (MindFormers' reverse
# converter, convert_reversed.py, imports torch at the top and cannot load here).
HF_NAMES = [("model.tok_embeddings.embedding_weight", "model.embed_tokens.weight"),
            (".attention.wq.", ".self_attn.q_proj."), (".attention.wk.", ".self_attn.k_proj."),
            (".attention.wv.", ".self_attn.v_proj."), (".attention.wo.", ".self_attn.o_proj."),
            (".feed_forward.w1.", ".mlp.gate_proj."), (".feed_forward.w2.", ".mlp.down_proj."),
            (".feed_forward.w3.", ".mlp.up_proj."), (".attention_norm.", ".input_layernorm."),
            (".ffn_norm.", ".post_attention_layernorm."), ("model.norm_out.", "model.norm.")]


def _hf_name(name):
    for ours, theirs in HF_NAMES:
        name = name.replace(ours, theirs)
    return name


def _hugging_face(params):
    """The weights under Hugging Face's Llama names."""
    hf = {_hf_name(name): value for name, value in params.items()}
    assert "model.layers.0.self_attn.q_proj.weight" in hf and "model.embed_tokens.weight" in hf
    hf["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(8, np.float32)  # a buffer, not a weight
    return hf


def _write_safetensors(params, path):
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, str(path))
    return path


def _same(path, params):
    got = checkpoint_io.read(path)
    assert sorted(got) == sorted(params)
    for name, value in params.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_hugging_face_safetensors_relative_to_the_data_path(tmp_path, tiny):
    params, _ = tiny
    data = tmp_path / "data"
    _write_safetensors(_hugging_face(params), data / "models" / "hf" / "model.safetensors")
    spec = _spec(data, "models/hf/model.safetensors")
    path = base_model.ensure(spec, data / "runs" / "r1")
    assert path.suffix == ".ckpt" and str(path).startswith(str(data / "runs" / ".cache" / "models"))
    _same(path, params)
    assert base_model.checkpoint_path(spec, data / "runs" / "r2") == path  # converted once per volume


def test_a_directory_of_shards_in_half_precision(tmp_path, tiny):
    params, _ = tiny
    hf = _hugging_face(params)
    names = sorted(hf)
    half = {k: v.astype(np.float16) for k, v in hf.items()}
    _write_safetensors({k: half[k] for k in names[::2]}, tmp_path / "hf" / "model-00001-of-00002.safetensors")
    _write_safetensors({k: half[k] for k in names[1::2]}, tmp_path / "hf" / "model-00002-of-00002.safetensors")
    path = base_model.ensure(_spec(tmp_path, str(tmp_path / "hf")), tmp_path / "runs" / "r")
    want = {k: v.astype(np.float16) for k, v in params.items()}
    _same(path, want)
    assert {t.dtype for t in checkpoint_io.tensors(path)} == {"Float16"}


def test_a_truncated_safetensors_file_is_bad_input(tmp_path, tiny):
    params, _ = tiny
    path = _write_safetensors(_hugging_face(params), tmp_path / "model.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(tmp_path, str(path)), tmp_path / "runs" / "r")
    assert str(path) in str(err.value) and "safetensors" in str(err.value)


def test_over_https_uri_with_sha256(tmp_path, tiny, http_root):
    params, ckpt = tiny
    root, base = http_root
    _write_safetensors(_hugging_face(params), root / "llama.safetensors")
    (root / "llama.ckpt").write_bytes(ckpt.read_bytes())
    good = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    data = tmp_path / "data"
    path = base_model.ensure(_spec(data, f"{base}/llama.ckpt", good), data / "runs" / "r")
    assert path.read_bytes() == ckpt.read_bytes()
    _same(base_model.ensure(_spec(data, f"{base}/llama.safetensors"), data / "runs" / "r"), params)
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(data, f"{base}/llama.ckpt", "0" * 64), data / "runs" / "r")
    assert err.value.field == "spec.model.checkpointSha256" and good in str(err.value)
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(data, f"{base}/absent.ckpt"), data / "runs" / "r")
    assert err.value.field == "spec.model.checkpoint" and "HTTP 404" in str(err.value)


def test_from_s3(tmp_path, tiny, moto_s3):
    _, ckpt = tiny
    moto_s3.create_bucket(Bucket="models")
    moto_s3.put_object(Bucket="models", Key="llama/tiny.ckpt", Body=ckpt.read_bytes())
    data = tmp_path / "data"
    path = base_model.ensure(_spec(data, "s3://models/llama/tiny.ckpt"), data / "runs" / "r")
    assert path.read_bytes() == ckpt.read_bytes()
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(data, "s3://models/llama/absent.ckpt"), data / "runs" / "r")
    assert err.value.field == "spec.model.checkpoint"


def test_the_converted_weights_load_strictly_into_mindformers_llama(tmp_path, tiny, laid_out, http_root):
    """evaluate scores the base model from Hugging Face safetensors over http: every weight found."""
    params, _ = tiny
    run_dir, spec_file, _, _ = laid_out
    root, base = http_root
    laid_params = checkpoint_io.read(next((run_dir / "base").glob("*.ckpt")))
    _write_safetensors(_hugging_face(laid_params), root / "model.safetensors")
    doc = yaml.safe_load(spec_file.read_text())
    doc["spec"]["model"]["checkpoint"] = f"{base}/model.safetensors"
    doc["spec"]["evaluation"]["baseScores"] = {}
    doc["spec"]["evaluation"]["maxSamples"] = 1
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    proc = run_stage("evaluate", spec, run_dir)
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        result = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))
        assert result["baseSource"] == "computed"
        assert "converted from 1 safetensors file" in proc.stdout
    finally:
        import shutil

        shutil.rmtree(run_dir / "evaluate", ignore_errors=True)


def test_a_local_checkpoint_with_its_sha256(tmp_path, tiny):
    _, ckpt = tiny
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / "tiny.ckpt").write_bytes(ckpt.read_bytes())
    good = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert base_model.ensure(_spec(data, "models/tiny.ckpt", good), data / "runs" / "r") == data / "models" / "tiny.ckpt"
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(data, "models/tiny.ckpt", "1" * 64), data / "runs" / "r")
    assert err.value.field == "spec.model.checkpointSha256" and good in str(err.value)
    (data / "models" / "tiny.ckpt").write_bytes(ckpt.read_bytes()[:-10])  # changed after it was verified
    with pytest.raises(SpecError) as err:
        base_model.ensure(_spec(data, "models/tiny.ckpt", good), data / "runs" / "r")
    assert err.value.field == "spec.model.checkpointSha256"
