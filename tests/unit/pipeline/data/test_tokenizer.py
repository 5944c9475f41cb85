"""Real tokenizers: Llama 3 from tokenizer.json and from tiktoken tokenizer.model give
the same ids as the `tokenizers` library on the real rows; sentencepiece models load."""
import json

import pytest
from tokenizers import Tokenizer

from mathtune_pipeline.data import llama3_convert as L3
from mathtune_pipeline.data.templates import Template
from mathtune_pipeline.data.tokenizer import load_tokenizer
from mathtune_pipeline.errors import SpecError


@pytest.fixture(scope="module")
def texts(contest_200):
    out = []
    for row in contest_200:
        prompt, response = Template("alpaca").render(row["problem"], "", row["solution"])
        out += [row["problem"], row["solution"], prompt, response]
    return out


@pytest.fixture(scope="module")
def reference(llama3_tokenizer_json, texts):
    tok = Tokenizer.from_file(str(llama3_tokenizer_json))
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def test_tokenizer_json_gives_the_reference_ids(llama3_tokenizer_json, texts, reference):
    tok = load_tokenizer(llama3_tokenizer_json, "hf-json")
    assert tok.encode_batch(texts) == reference
    assert tok.encode_batch(texts, threads=2) == reference
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (128000, 128001, 128002)
    assert all(tok.decode(ids) == text for ids, text in zip(reference, texts))


def test_json_to_tiktoken_model_and_back(tmp_path, llama3_tokenizer_json, texts, reference):
    model = tmp_path / "tokenizer.model"
    L3.hf_json_to_tiktoken(llama3_tokenizer_json, model)
    first = model.read_text().splitlines()[0].split()
    assert len(first) == 2 and first[1] == "0"          # `base64(token) rank`, MindFormers' Llama 3 format
    from_model = load_tokenizer(model, "tiktoken")
    assert from_model.encode_batch(texts) == reference
    assert (from_model.bos_id, from_model.eos_id, from_model.pad_id) == (128000, 128001, 128002)

    back = tmp_path / "tokenizer.json"
    L3.tiktoken_to_hf_json(model, back)
    hf_back = Tokenizer.from_file(str(back))       # the `tokenizers` library itself encodes the converted file
    assert [e.ids for e in hf_back.encode_batch(texts, add_special_tokens=False)] == reference
    original = json.loads(llama3_tokenizer_json.read_text())
    converted = json.loads(back.read_text())
    assert converted["model"]["vocab"] == original["model"]["vocab"]
    as_pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in original["model"]["merges"]]
    assert [tuple(m) for m in converted["model"]["merges"]] == as_pairs
    assert {t["content"]: t["id"] for t in converted["added_tokens"]} == \
        {t["content"]: t["id"] for t in original["added_tokens"]}


def test_sentencepiece_model(tmp_path, contest_200):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(r["problem"] + "\n" + r["solution"] for r in contest_200), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=300,
                                   model_type="bpe", character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0,
                                   pad_id=-1, minloglevel=2)
    tok = load_tokenizer(tmp_path / "sp.model", "sentencepiece")
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 0)
    ids = tok.encode_batch(["计算 1 + 2 等于多少？", "1 + 2 = 3"], threads=2)
    assert ids == [tok.encode("计算 1 + 2 等于多少？"), tok.encode("1 + 2 = 3")]
    assert tok.decode(ids[1]) == "1 + 2 = 3"


def test_bad_tokenizer_settings_name_the_field(tmp_path, llama3_tokenizer_json):
    with pytest.raises(SpecError) as err:
        load_tokenizer(llama3_tokenizer_json, "bpe")
    assert err.value.field == "spec.model.tokenizer.format"
    with pytest.raises(SpecError) as err:
        load_tokenizer(tmp_path / "absent.json", "hf-json")
    assert err.value.field == "spec.model.tokenizer.uri"
    junk = tmp_path / "junk.model"
    junk.write_text("not base64 at all\n")
    with pytest.raises(SpecError) as err:
        load_tokenizer(junk, "tiktoken")
    assert err.value.field == "spec.model.tokenizer.uri"


def test_other_tokenizer_json_is_encoded_by_the_tokenizers_library(tmp_path, contest_200):
    from tokenizers import models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([r["solution"] for r in contest_200],
                            trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>", "<pad>"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    loaded = load_tokenizer(path, "hf-json")
    assert loaded.engine == "tokenizers"
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (1, 2, 3)
    sample = [r["solution"] for r in contest_200[:20]]
    assert loaded.encode_batch(sample) == [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)]
