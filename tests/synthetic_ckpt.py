"""A training checkpoint shaped like MindFormers' Llama with LoRA, of any size,
written by MindSpore's own save_checkpoint; and a finished train stage around
it, so the merge stage can run on it without training first."""
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

TARGETS = ("wq", "wv")
LORA_A, LORA_B = ".mindpet_delta_lora_a", ".mindpet_delta_lora_b"


def layout(layers: int, hidden: int, vocab: int, rank: int = 8) -> Dict[str, tuple]:
    """{name: shape} of the model's weights, the LoRA pairs and their Adam state."""
    shapes: Dict[str, tuple] = {"model.tok_embeddings.embedding_weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}"
        for m in ("wq", "wk", "wv", "wo"):
            shapes[f"{p}.attention.{m}.weight"] = (hidden, hidden)
        for m, shape in (("w1", (2 * hidden, hidden)), ("w2", (hidden, 2 * hidden)), ("w3", (2 * hidden, hidden))):
            shapes[f"{p}.feed_forward.{m}.weight"] = shape
        shapes[f"{p}.attention_norm.weight"] = (hidden,)
        shapes[f"{p}.ffn_norm.weight"] = (hidden,)
        for m in TARGETS:
            shapes[f"{p}.attention.{m}{LORA_A}"] = (rank, hidden)
            shapes[f"{p}.attention.{m}{LORA_B}"] = (hidden, rank)
    shapes["model.norm_out.weight"] = (hidden,)
    shapes["lm_head.weight"] = (vocab, hidden)
    for name in [n for n in shapes if LORA_A in n or LORA_B in n]:
        shapes["adam_m." + name] = shapes[name]
        shapes["adam_v." + name] = shapes[name]
    return shapes


def write(path: Path, layers: int, hidden: int, vocab: int, dtype: str = "float32", seed: int = 0) -> Path:
    """Model weights in `dtype` (float32, float16 or bfloat16), LoRA and Adam
    state in float32, a step counter; one tensor in memory at a time."""
    import mindspore as ms

    ms_dtype = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}[dtype]
    rng = np.random.default_rng(seed)
    items: List[dict] = []
    for name, shape in layout(layers, hidden, vocab).items():
        value = rng.standard_normal(shape, dtype=np.float32) * 0.02
        tensor = ms.Tensor(value)
        if not (LORA_A in name or LORA_B in name or name.startswith("adam")):
            tensor = tensor.astype(ms_dtype)
        items.append({"name": name, "data": tensor})
    items.append({"name": "global_step", "data": ms.Tensor(np.array([12], np.int32))})
    path.parent.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint(items, str(path))
    return path


def finished_train_stage(run_dir: Path, checkpoint: Path, epoch: int = 1) -> Path:
    """`<run_dir>/train/` as a finished train stage publishes it: the checkpoint
    as rank 0's file of `epoch`, and its manifest."""
    train = run_dir / "train"
    dst = train / "checkpoint" / "rank_0" / f"llama_rank_0-{epoch}_1.ckpt"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst != checkpoint:
        checkpoint.replace(dst)
    manifest = {"stage": "train", "inputDigest": "synthetic", "configDigest": "synthetic",
                "outputs": {"checkpoints": {str(epoch): {"0": str(dst.relative_to(train))}}}, "counts": {}}
    (train / "manifest.json").write_text(json.dumps(manifest))
    return dst
