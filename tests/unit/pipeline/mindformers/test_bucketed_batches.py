"""Bucketed batches train exactly what padded ones train: real MindSpore on CPU.

The model is MindFormers' Llama built from the config the train stage renders
for bucketed rows (`is_dynamic`, the sequence axis declared symbolic as
MindFormers' Trainer declares it); the batches are padded by MindFormers' own
`dyn_batch_wrapper`, as its loader pads them. Compared: the loss and every
LoRA gradient of the same rows, padded to seq_length + 1 (the `padded`
layout) and to their bucket's width.
"""
import numpy as np
import pytest

from mathtune_pipeline.data import bucketing
from mathtune_pipeline.mindformers import cpu, dialect, model, render
from tests.specs import typed

from .conftest import RUN1

pytestmark = pytest.mark.mindspore

SEQ = 64
MULTIPLE = 8
PAD = 0
SMALL = {"hidden_size": 64, "num_layers": 2, "num_heads": 8, "n_kv_heads": 2, "vocab_size": 300,
         "intermediate_size": 96, "pad_token_id": PAD}


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    import os

    import mindspore as ms
    from mindspore import Symbol, Tensor

    here = tmp_path_factory.mktemp("bucketed")
    home = os.getcwd()
    os.chdir(here)  # MindFormers writes output/ under the working directory while it builds

    spec = typed({**RUN1, "model": {"family": "llama3-8b"}, "data": {"seqLength": SEQ},
                          "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["wq", "wv", "w2"]},
                          "training": {"batchSize": 2},
                          "resources": {"npusPerNode": 1, "nodes": 1, "parallel": {
                              "dataParallel": 1, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    cfg = render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1,
                                 special_tokens={"pad_token_id": PAD},
                                 batching={"mode": "bucketed", "multiple": MULTIPLE})
    cfg = cpu.cpu_profile(dialect.adapt(cfg))
    assert cfg["model"]["model_config"]["is_dynamic"] is True
    assert cfg["train_dataset"]["data_loader"]["shuffle"] is False, "the written order holds the buckets"
    assert cfg["train_dataset"]["dynamic_batch"] is True and cfg["train_dataset"]["divisor"] == MULTIPLE
    cfg["model"]["model_config"].update(SMALL)
    path = model.write_config(cfg, here / "finetune.yaml")
    model.set_cpu_context(seed=1)
    try:
        net = model.build_network(model.load_config(path))
    finally:
        os.chdir(home)
    net.set_train(True)
    symbol = Symbol(divisor=MULTIPLE, remainder=1)
    net.set_inputs(Tensor(shape=(None, symbol), dtype=ms.int32), Tensor(shape=(None, symbol), dtype=ms.int32))
    # Random, not zero, LoRA B matrices: with B = 0 (LoRA's start) the A
    # gradients are zero and would compare equal whatever the batches did.
    rng = np.random.default_rng(7)
    for p in net.trainable_params():
        p.set_data(ms.Tensor(rng.normal(0, 0.05, p.shape).astype(np.float32)))
    return net


def sample(seed: int, length: int, prompt: int):
    ids = np.random.default_rng(seed).integers(3, 300, length).astype(np.int32)
    labels = ids.copy()
    labels[:prompt] = -100
    return ids, labels


def as_padded(samples, width):
    """The `padded` layout: every row padded to `width` with PAD, labels with -100."""
    ids = np.full((len(samples), width), PAD, np.int32)
    labels = np.full((len(samples), width), -100, np.int32)
    for i, (x, y) in enumerate(samples):
        ids[i, :len(x)], labels[i, :len(y)] = x, y
    return ids, labels


def as_bucketed(samples):
    """The batch as MindFormers' loader pads a dynamic batch."""
    from mindformers.dataset.causal_language_model_dataset import dyn_batch_wrapper

    ids, labels = dyn_batch_wrapper([x for x, _ in samples], [y for _, y in samples], None,
                                    divisor=MULTIPLE, remainder=1, pad_token_id=[PAD, -100])
    return np.stack(ids), np.stack(labels)


def loss_and_grads(net, ids, labels):
    import mindspore as ms

    params = net.trainable_params()
    fn = ms.value_and_grad(net, grad_position=None, weights=params)
    loss, grads = fn(ms.Tensor(ids), ms.Tensor(labels))
    return float(loss.asnumpy().reshape(-1)[0]), {p.name: g.asnumpy() for p, g in zip(params, grads)}


def test_bucket_width_is_mindformers_padding():
    for longest in range(2, 200):
        ids, _ = as_bucketed([(np.ones(longest, np.int32), np.ones(longest, np.int32))])
        assert ids.shape[1] == bucketing.bucket_width(longest, MULTIPLE), longest


def test_loss_and_lora_gradients_equal_padded_batches(network):
    samples = [sample(1, 23, 9), sample(2, 30, 12)]
    bucket_ids, bucket_labels = as_bucketed(samples)
    assert bucket_ids.shape == (2, 33), "30 tokens round up to 4 x 8 + 1"
    padded_loss, padded_grads = loss_and_grads(network, *as_padded(samples, SEQ + 1))
    bucket_loss, bucket_grads = loss_and_grads(network, bucket_ids, bucket_labels)
    assert padded_loss > 0
    assert bucket_loss == pytest.approx(padded_loss, rel=1e-5, abs=1e-6)
    assert padded_grads.keys() == bucket_grads.keys() and len(padded_grads) == 12
    for name, grad in padded_grads.items():
        assert np.abs(grad).max() > 0, f"{name}: a zero gradient compares equal to anything"
        np.testing.assert_allclose(bucket_grads[name], grad, rtol=1e-4, atol=1e-6, err_msg=name)


def test_no_row_learns_from_another_in_its_batch(network):
    """The trap: the second sample repeats the first one's prompt and answer
    as its own prefix. Were anything shared across rows of a batch (the
    attention, the label shift, the padding), the first row's answer would be
    predictable from the second's. Each row's loss in the batch must be the
    loss it has alone: the batch loss is their label-weighted mean."""
    first = sample(3, 20, 8)
    trap_ids = np.concatenate([first[0], sample(4, 18, 0)[0]])
    trap_labels = trap_ids.copy()
    trap_labels[:len(first[0]) + 6] = -100
    trap = (trap_ids, trap_labels)
    together, _ = loss_and_grads(network, *as_bucketed([first, trap]))
    alone = [loss_and_grads(network, *as_bucketed([s, s]))[0] for s in (first, trap)]
    weights = [int((s[1][1:] != -100).sum()) for s in (first, trap)]
    expected = (alone[0] * weights[0] + alone[1] * weights[1]) / sum(weights)
    assert together == pytest.approx(expected, rel=1e-5)
    assert abs(alone[0] - alone[1]) > 1e-3, "the two rows' losses differ, so the mean is a real check"
