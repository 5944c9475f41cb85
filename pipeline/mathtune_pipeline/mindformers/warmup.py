"""A base model that already knows something: full-parameter training of the tiny Llama on CPU.

LoRA adapts a model; it cannot teach a random one a language. Measured on
CPU: LoRA (rank 16, every projection) on a random frozen tiny Llama
plateaus at loss ~4.98 even on 4 fixed rows, while full-parameter training
of the same model reaches 0.25. So the CPU profile's base model is first
trained in full, briefly, on text the run does not fine-tune on (demo_data
chooses it), and saved as the checkpoint `spec.model.checkpoint` names;
fine-tuning then starts from a model with something to improve, and
evaluate/predict compare two different models.

The model is the one the stages build (base_model.model_only_config: the
spec's family and sizes, the CPU profile's flags), so its checkpoint loads
into train, evaluate and predict strictly. The loop is plain MindSpore
(`TrainOneStepCell`, Adam, one process): the warm-up is part of
making demo inputs, not a stage.
"""
import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mathtune_api import MathFinetuneSpec as Spec

from ..data.tokenizer import TextTokenizer
from . import base_model, model

IGNORE = -100


def layout(tokenizer: TextTokenizer, pairs: Sequence[Tuple[str, str]], width: int) -> Tuple[np.ndarray, np.ndarray]:
    """`BOS prompt response EOS PAD...` rows of `width` ids, prompt and response encoded apart as the
    tokenize stage encodes them; labels over every real token but BOS (plain language modelling)."""
    prompts = tokenizer.encode_batch([p for p, _ in pairs])
    responses = tokenizer.encode_batch([r for _, r in pairs])
    ids = np.full((len(pairs), width), tokenizer.pad_id, np.int32)
    labels = np.full((len(pairs), width), IGNORE, np.int32)
    for i, (prompt, response) in enumerate(zip(prompts, responses)):
        row = ([tokenizer.bos_id] + prompt + response + [tokenizer.eos_id])[:width]
        ids[i, :len(row)] = row
        labels[i, 1:len(row)] = row[1:]   # BOS is never predicted
    return ids, labels


def train(spec: Spec, tokenizer: TextTokenizer, pairs: Sequence[Tuple[str, str]], out: Path, *,
          epochs: int, batch_size: int, learning_rate: float, seed: int = 0,
          log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Train every weight of the spec's model on `pairs` (prompt, response) and save it to `out`."""
    import mindspore as ms
    from mindspore import nn

    width = int(spec.data.seq_length) + 1
    ids, labels = layout(tokenizer, pairs, width)
    model.set_cpu_context(seed)
    network = model.build_network(model.load_config(base_model.model_only_config(spec)))
    network.set_train(True)
    steps_per_epoch = len(ids) // batch_size
    total = steps_per_epoch * epochs
    # Cosine decay from the peak after a short warm-up: the loss falls fast,
    # then the last steps settle instead of bouncing at the peak rate.
    schedule = nn.cosine_decay_lr(learning_rate * 0.05, learning_rate, total, steps_per_epoch, epochs)
    warm = max(1, total // 20)
    schedule = [learning_rate * (i + 1) / warm for i in range(warm)] + list(schedule[warm:])
    # Adam, not AdamWeightDecay: measured on 8 rows, 150 steps at 3e-3, Adam
    # reached loss 0.03 and MindSpore's AdamWeightDecay (no bias correction) 1.38.
    optimizer = nn.Adam(network.trainable_params(), learning_rate=schedule)
    step = nn.TrainOneStepCell(network, optimizer)
    step.set_train(True)
    order = list(range(len(ids)))
    rng = random.Random(seed)
    losses: List[float] = []
    for epoch in range(epochs):
        rng.shuffle(order)
        for s in range(steps_per_epoch):
            chosen = order[s * batch_size:(s + 1) * batch_size]
            loss = step(ms.Tensor(ids[chosen]), ms.Tensor(labels[chosen]))
            losses.append(float(loss.asnumpy()))
        if log:
            log(f"warm-up epoch {epoch + 1}/{epochs}: mean loss {np.mean(losses[-steps_per_epoch:]):.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")  # save_checkpoint wants a .ckpt suffix
    ms.save_checkpoint(network, str(tmp))
    tmp.replace(out)
    return {"rows": len(ids), "steps": total, "firstLoss": losses[0], "lastLoss": float(np.mean(losses[-5:])),
            "parameters": model.total_count(network)}
