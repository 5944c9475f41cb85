"""Models built by MindFormers itself on CPU: LoRA applied by its pet code, counts as the formulas say."""
import pytest

from mathtune_pipeline.mindformers import counts, cpu, dialect, model, render
from tests.specs import typed

from .conftest import RUN1

# Each family's own config with its sizes scaled down so it builds in seconds;
# everything else (GQA ratio, biases, dtypes as CPU needs them) stays.
SMALL = {
    "llama3-8b": {"hidden_size": 64, "num_layers": 2, "num_heads": 8, "n_kv_heads": 2, "vocab_size": 300,
                  "intermediate_size": 96},
    "internlm-7b": {"hidden_size": 64, "num_layers": 3, "num_heads": 4, "vocab_size": 260, "intermediate_size": 80},
    "llama-7b": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "vocab_size": 128, "intermediate_size": None,
                 "multiple_of": 32},
}
TARGETS = {"llama3-8b": ["wq", "wv"], "internlm-7b": ["wq", "wk", "wv", "wo"], "llama-7b": ["wq", "wk", "w2"]}


@pytest.mark.mindspore
@pytest.mark.parametrize("family", sorted(SMALL))
def test_lora_count_matches_mindformers(family, tmp_path):
    spec = typed({**RUN1, "model": {"family": family}, "data": {"seqLength": 16},
                          "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "targetModules": TARGETS[family]},
                          "resources": {"npusPerNode": 1, "nodes": 1, "parallel": {
                              "dataParallel": 1, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    cfg = render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)
    cfg = cpu.cpu_profile(dialect.adapt(cfg))
    cfg["model"]["model_config"].update(SMALL[family])
    path = model.write_config(cfg, tmp_path / "finetune.yaml")
    model.set_cpu_context()
    network = model.build_network(model.load_config(path))
    mc = cfg["model"]["model_config"]
    assert type(network).__name__ == "PetModel"
    lora = counts.lora_params(mc, mc["pet_config"])
    assert model.trainable_count(network) == lora
    assert model.total_count(network) == counts.base_params(mc) + lora
    names = [p.name for p in network.trainable_params()]
    assert all("mindpet_delta_lora" in n for n in names)
    assert {n.split(".")[-2] for n in names} == set(TARGETS[family])
