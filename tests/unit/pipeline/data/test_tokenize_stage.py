"""`mathtune-pipeline tokenize` end to end on the real rows and the real Llama 3 tokenizer;
shards read back with MindSpore's MindDataset, every label mask checked by decoding."""
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from mathtune_pipeline.cli import main
from mathtune_pipeline.data import llama3_convert as L3
from mathtune_pipeline.data import types as T
from mathtune_pipeline.data.mindrecord import read_shards
from mathtune_pipeline.data.tokenizer import load_tokenizer
from tests import stage_result
from tests.specs import whole

pytestmark = pytest.mark.mindspore

STEP_TYPES = sorted(set(T.CONTEST_TYPES) - {T.ENGLISH})


def stage(name, tmp_path: Path, spec: dict, run_dir: Path):
    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump({"spec": whole(spec)}))
    result_file = tmp_path / f"{name}-result.json"
    code = main([name, "--spec", str(spec_path), "--run-dir", str(run_dir), "--result-file", str(result_file)])
    return code, stage_result.check(json.loads(result_file.read_text()))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, contest_200_path):
    """The 200 real rows through prepare (chain of thought, alpaca), shared by the tests here."""
    tmp = tmp_path_factory.mktemp("prepared")
    run_dir = tmp / "run"
    code, result = stage("prepare", tmp, {"data": {
        "source": {"uri": str(contest_200_path)},
        "chainOfThought": {"enabled": True, "types": STEP_TYPES}}}, run_dir)
    assert code == 0, result
    rows = [json.loads(line) for line in (run_dir / "prepare" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    return run_dir, rows


def tokenize_spec(uri, fmt="hf-json", seq_length=512, shards=2, percentile=100, batching="padded", **extra):
    return {"model": {"tokenizer": {"uri": str(uri), "format": fmt}},
            "data": {"seqLength": seq_length, "seqLengthPercentile": percentile, "shards": shards,
                     "batching": {"mode": batching}}, **extra}


def shard_paths(run_dir: Path):
    manifest = json.loads((run_dir / "tokenize" / "manifest.json").read_text())
    return [run_dir / p for p in manifest["outputs"]["shards"]], manifest


def check_rows(read, rows, tok, seq_length, padded=True):
    """Every row: BOS, prompt, response, EOS, then padding to seq_length + 1
    (`padded`) or nothing; labels exactly the response and EOS."""
    answers = {r["prompt"]: r["response"] for r in rows}
    assert len(read) == len(rows)
    for input_ids, labels in read:
        assert input_ids.shape == labels.shape
        if padded:
            assert input_ids.shape == (seq_length + 1,)
        else:
            assert labels[-1] == tok.eos_id and len(input_ids) <= seq_length + 1, "unpadded rows end at EOS"
        assert input_ids.dtype == labels.dtype == np.int32
        assert input_ids[0] == tok.bos_id
        kept = np.flatnonzero(labels != -100)
        assert len(kept) and (kept == np.arange(kept[0], kept[-1] + 1)).all(), "labels must be one contiguous run"
        assert (labels[kept] == input_ids[kept]).all()
        assert labels[kept[-1]] == tok.eos_id
        prompt = tok.decode(input_ids[1:kept[0]].tolist())
        assert prompt in answers, prompt
        assert tok.decode(labels[kept[:-1]].tolist()) == answers[prompt]
        assert (input_ids[kept[-1] + 1:] == tok.pad_id).all()
    return len(read)


def test_real_rows_mindrecord_shards_and_exact_label_masks(tmp_path, prepared, llama3_tokenizer_json):
    run_dir, rows = prepared
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json), run_dir)
    assert code == 0, result
    assert result["rows"] == 200 and result["seqLength"] == 512 and result["shards"] == 2 and result["truncated"] == 0
    paths, manifest = shard_paths(run_dir)
    assert [p.name for p in paths] == ["train-00000-of-00002.mindrecord", "train-00001-of-00002.mindrecord"]
    assert all(p.is_file() and Path(f"{p}.db").is_file() for p in paths)
    back = read_shards(paths)
    assert back["count"] == 200
    tok = load_tokenizer(llama3_tokenizer_json, "hf-json")
    check_rows(back["rows"], rows, tok, 512)
    counts = manifest["counts"]
    real = sum(int((ids != tok.pad_id).sum()) for ids, _ in back["rows"])
    assert counts["tokens"] == real and counts["paddingShare"] == round(1 - real / (200 * 513), 4)
    assert sum(counts["lengthHistogram"].values()) == 200 and counts["shardRows"] == [100, 100]
    assert manifest["tokenizer"]["pad"] == 128002 and manifest["tokenizer"]["bos"] == 128000
    # Unchanged input and config: skipped.
    code, again = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json), run_dir)
    assert code == 0 and again.get("skipped") is True


def mindformers_padded_widths(lengths, batch_size, data_parallel, multiple, pad_id):
    """Each rank's batches as MindFormers pads them: its own dyn_batch_wrapper
    on the rows MindDataset deals to that rank (row i to rank i mod dp)."""
    from mindformers.dataset.causal_language_model_dataset import dyn_batch_wrapper

    group = batch_size * data_parallel
    widths = []
    for start in range(0, len(lengths) // group * group, group):
        for rank in range(data_parallel):
            batch = [np.ones(n, np.int32) for n in lengths[start:start + group][rank::data_parallel]]
            ids, labels = dyn_batch_wrapper(batch, batch, None, divisor=multiple, remainder=1,
                                            pad_token_id=[pad_id, -100])
            widths.extend(len(row) for row in ids)
    return widths


def test_bucketed_rows_are_unpadded_in_length_sorted_global_batches(tmp_path, prepared, llama3_tokenizer_json):
    """The default layout: rows end at EOS, each step's rows have similar
    lengths, and the padding share the manifest states is what MindFormers'
    own batch padding computes on the rows as read back."""
    run_dir, rows = prepared
    spec = tokenize_spec(llama3_tokenizer_json, batching="bucketed", shards=3,
                         training={"batchSize": 8, "seed": 3},
                         resources={"parallel": {"dataParallel": 2, "modelParallel": 1, "pipelineStage": 1}})
    code, result = stage("tokenize", tmp_path, spec, run_dir)
    assert code == 0, result
    paths, manifest = shard_paths(run_dir)
    tok = load_tokenizer(llama3_tokenizer_json, "hf-json")
    read = read_shards(paths)["rows"]
    check_rows(read, rows, tok, 512, padded=False)
    assert manifest["batching"] == {"mode": "bucketed", "multiple": 8, "batchSize": 8, "dataParallel": 2,
                                    "seed": 3, "perRankBatches": True}
    lengths = np.array([len(ids) for ids, _ in read])
    widths = mindformers_padded_widths(lengths, 8, 2, 8, tok.pad_id)
    used = len(widths)
    assert used == 192, "200 rows in global batches of 16: the last 8 are the partial batch MindFormers drops"
    counts = manifest["counts"]
    assert counts["computedTokens"] == sum(widths)
    assert counts["paddingShare"] == round(1 - lengths[:used].sum() / sum(widths), 4)
    assert counts["paddingShare"] < 0.10 < counts["paddingShareIfPadded"]
    # Sorted into global batches, which are then shuffled: not one sorted run.
    spans = [np.ptp(lengths[i:i + 16]) for i in range(0, used, 16)]
    assert np.median(spans) <= 2 < np.ptp(lengths), spans
    assert not (np.diff(lengths[:used]) >= 0).all()
    # The same seed, the same order; the layout is part of the stage's config.
    again = tokenize_spec(llama3_tokenizer_json, batching="bucketed", shards=3, training={"batchSize": 4, "seed": 3},
                          resources={"parallel": {"dataParallel": 2, "modelParallel": 1, "pipelineStage": 1}})
    code, result = stage("tokenize", tmp_path, again, run_dir)
    assert code == 0 and not result.get("skipped"), "a new batch size orders the rows anew"


def test_auto_batching_pads_where_bucketing_cannot_train(tmp_path, prepared, llama3_tokenizer_json):
    """LoRA on wo fails on MindFormers' dynamic batches: auto pads such runs
    and says why; asking for bucketed with it is refused, naming the field."""
    run_dir, rows = prepared
    with_wo = {"lora": {"targetModules": ["wq", "wo"]}}
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json, batching="auto", **with_wo),
                         run_dir)
    assert code == 0, result
    _, manifest = shard_paths(run_dir)
    assert manifest["batching"]["mode"] == "padded" and manifest["batching"]["requested"] == "auto"
    assert "wo" in manifest["batching"]["reason"]
    check_rows(read_shards(shard_paths(run_dir)[0])["rows"], rows, load_tokenizer(llama3_tokenizer_json, "hf-json"),
               512)
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json, batching="bucketed", **with_wo),
                         run_dir)
    assert code == 2 and result["error"].startswith("spec.data.batching.mode:") and "wo" in result["error"]
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json, batching="auto"), run_dir)
    assert code == 0 and shard_paths(run_dir)[1]["batching"]["mode"] == "bucketed"


def test_auto_seq_length_percentile_and_the_tiktoken_file(tmp_path, prepared, llama3_tokenizer_json):
    run_dir, rows = prepared
    tok = load_tokenizer(llama3_tokenizer_json, "hf-json")
    lengths = sorted(len(tok.encode(r["prompt"])) + len(tok.encode(r["response"])) + 2 for r in rows)
    expected = math.ceil((lengths[-1] - 1) / 64) * 64
    model = tmp_path / "tokenizer.model"
    L3.hf_json_to_tiktoken(llama3_tokenizer_json, model)
    code, result = stage("tokenize", tmp_path, tokenize_spec(model, "tiktoken", "auto", shards=1), run_dir)
    assert code == 0, result
    assert result["seqLength"] == expected and result["truncated"] == 0
    assert lengths[-1] > expected - 64 + 1, "a smaller multiple of 64 would have fit"
    paths, manifest = shard_paths(run_dir)
    assert manifest["tokenizer"]["engine"].startswith("tiktoken (tokenizer.model)")
    check_rows(read_shards(paths)["rows"], rows, tok, expected)

    code, result = stage("tokenize", tmp_path, tokenize_spec(model, "tiktoken", "auto", shards=3, percentile=50),
                         run_dir)
    assert code == 0, result
    median_fit = math.ceil((lengths[math.ceil(0.5 * len(lengths)) - 1] - 1) / 64) * 64
    assert result["seqLength"] == median_fit
    assert result["truncated"] == sum(1 for n in lengths if n > median_fit + 1)


def test_sentencepiece_through_the_stage(tmp_path, prepared):
    import sentencepiece as spm

    run_dir, rows = prepared
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(r["prompt"] + "\n" + r["response"] for r in rows), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=400,
                                   model_type="bpe", character_coverage=1.0, minloglevel=2)
    code, result = stage("tokenize", tmp_path, tokenize_spec(tmp_path / "sp.model", "sentencepiece", 256, 1), run_dir)
    assert code == 0, result
    paths, manifest = shard_paths(run_dir)
    tok = load_tokenizer(tmp_path / "sp.model", "sentencepiece")
    back = read_shards(paths)["rows"]
    assert len(back) == 200
    for input_ids, labels in back:
        assert input_ids[0] == tok.bos_id and input_ids.shape == (257,)
        kept = np.flatnonzero(labels != -100)
        assert labels[kept[-1]] == tok.eos_id and (labels[kept] == input_ids[kept]).all()


@pytest.mark.parametrize("data, field", [
    ({"seqLength": "long"}, "spec.data.seqLength"),
    ({"shards": 0}, "spec.data.shards"),
    ({"seqLength": "auto", "seqLengthPercentile": 0}, "spec.data.seqLengthPercentile"),
    ({"batching": {"mode": "packed"}}, "spec.data.batching.mode"),
    ({"batching": {"mode": "bucketed", "multiple": 3}}, "spec.data.batching.multiple"),
    ({"batching": {"mode": "bucketed", "multiple": 64}, "seqLength": 100}, "spec.data.seqLength"),
])
def test_bad_settings_exit_2_naming_the_field(tmp_path, prepared, llama3_tokenizer_json, data, field):
    run_dir, _ = prepared
    spec = tokenize_spec(llama3_tokenizer_json)
    spec["data"].update(data)
    code, result = stage("tokenize", tmp_path, spec, run_dir)
    assert code == 2 and result["error"].startswith(field + ":"), result


def test_without_prepare_output(tmp_path, llama3_tokenizer_json):
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json), tmp_path / "empty-run")
    assert code == 2 and "run `mathtune-pipeline prepare` first" in result["error"]


def test_no_prepared_rows(tmp_path, llama3_tokenizer_json):
    run_dir = tmp_path / "run"
    (run_dir / "prepare").mkdir(parents=True)
    (run_dir / "prepare" / "train.jsonl").write_text("")
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json), run_dir)
    assert code == 2 and "at least one prepared row" in result["error"]
    assert not (run_dir / "tokenize").exists()


def test_a_corrupt_prepared_row_is_a_clear_error_from_a_worker(tmp_path, llama3_tokenizer_json):
    run_dir = tmp_path / "run"
    (run_dir / "prepare").mkdir(parents=True)
    rows = [json.dumps({"type": "add", "prompt": f"计算 {i} + 1 等于多少？", "response": f"{i + 1}"}, ensure_ascii=False)
            for i in range(6000)]
    rows[5500] = '{"type": "add", "prompt": "cut off'
    (run_dir / "prepare" / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json), run_dir)
    assert code == 2, result
    assert re.search(r"train\.jsonl: JSON lines with prompt and response \(rows \d+\.\.6000", result["error"]), result


def _copy_of_prepared(tmp_path, prepared):
    """A run directory holding a copy of prepare's output, and that output's
    bytes: a refused tokenize must leave them as they were."""
    run_dir, _ = prepared
    work = tmp_path / "run"
    shutil.copytree(run_dir / "prepare", work / "prepare")
    return work, (work / "prepare" / "train.jsonl").read_bytes()


@pytest.mark.parametrize("damage", ["missing", "truncated", "binary", "empty"])
def test_a_missing_or_damaged_tokenizer_is_bad_input_naming_it(tmp_path, prepared, llama3_tokenizer_json, damage):
    work, kept = _copy_of_prepared(tmp_path, prepared)
    tok = tmp_path / "tokenizer.json"
    data = llama3_tokenizer_json.read_bytes()
    if damage != "missing":
        tok.write_bytes({"truncated": data[: len(data) // 2], "binary": bytes(range(256)) * 16, "empty": b""}[damage])
    code, result = stage("tokenize", tmp_path, tokenize_spec(tok), work)
    assert code == 2, result
    assert result["error"].startswith("spec.model.tokenizer.uri:") and str(tok) in result["error"], result
    assert (work / "prepare" / "train.jsonl").read_bytes() == kept and not (work / "tokenize").exists()


def test_a_tokenizer_with_more_ids_than_the_model_is_bad_input_at_tokenize(tmp_path, prepared, llama3_tokenizer_json):
    work, kept = _copy_of_prepared(tmp_path, prepared)
    spec = tokenize_spec(llama3_tokenizer_json, model={"family": "tiny-llama", "tiny": {
        "numLayers": 1, "hiddenSize": 64, "numHeads": 4, "vocabSize": 512}})
    spec["model"]["tokenizer"] = {"uri": str(llama3_tokenizer_json), "format": "hf-json"}
    code, result = stage("tokenize", tmp_path, spec, work)
    assert code == 2, result
    assert result["error"].startswith("spec.model.tiny.vocabSize:") and "128256" in result["error"], result
    assert (work / "prepare" / "train.jsonl").read_bytes() == kept and not (work / "tokenize").exists()


def test_every_row_dropped_by_the_sequence_length_is_bad_input(tmp_path, prepared, llama3_tokenizer_json):
    work, kept = _copy_of_prepared(tmp_path, prepared)
    code, result = stage("tokenize", tmp_path, tokenize_spec(llama3_tokenizer_json, seq_length=16), work)
    assert code == 2 and result["error"].startswith("spec.data.seqLength:"), result
    assert "every prompt is longer than 16" in result["error"], result
    assert (work / "prepare" / "train.jsonl").read_bytes() == kept and not (work / "tokenize").exists()
