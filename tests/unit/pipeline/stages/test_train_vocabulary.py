"""train refuses a tokenizer whose ids the model's embedding table cannot hold."""
import pytest

from mathtune_pipeline.errors import SpecError
from tests.specs import typed
from mathtune_pipeline.stages.train import check_vocabulary


def _config(vocab):
    return {"model": {"model_config": {"vocab_size": vocab}}}


def _manifest(vocab):
    return {"tokenizer": {"vocabSize": vocab, "bos": 128000, "eos": 128001, "pad": 128002}}


def test_tiny_model_smaller_than_the_tokenizer_names_the_field():
    spec = typed({"profile": "cpu", "model": {"family": "tiny-llama"}})
    with pytest.raises(SpecError) as err:
        check_vocabulary(spec, _config(512), _manifest(128256))
    assert err.value.field == "spec.model.tiny.vocabSize"
    assert "128256" in str(err.value) and "512" in str(err.value)


def test_a_vocabulary_that_covers_the_tokenizer_passes():
    spec = typed({"model": {"family": "llama3-8b"}})
    check_vocabulary(spec, _config(128256), _manifest(128256))
    check_vocabulary(spec, _config(128256), None)  # an older tokenize manifest: nothing to check against
