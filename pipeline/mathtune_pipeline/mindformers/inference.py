"""A MindFormers model loaded for inference, its logits, and greedy generation on CPU.

MindFormers 1.9's `generate()` does not run on CPU (test_cpu_refusals.py: greedy needs the
`ArgMaxExt` kernel, sampling `TopkExt`, `use_past` an fp16/bf16
`ApplyRotaryPosEmb`; REFERENCE §3). The model's own forward in predict mode
does: given a padded (batch, seq_length) input and each row's real length
(`batch_valid_length`) it returns the logits at each row's last real token
only (MindFormers' pre-gather), so a step costs one vocabulary row per
sequence, not seq_length of them. Greedy decoding is then a loop: feed the
padded sequences, take the argmax, append, repeat. Without a KV cache
each step recomputes the whole sequence, which a tiny model affords; on
Ascend the evaluate/predict stages use MindFormers' generate with `use_past`.
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy as np

from ..errors import SpecError
from . import checkpoint_io, lora_merge, model

# The keys of a rendered config's `context` section that MindSpore's
# set_context takes (MindSpore 2.9, context.py). The rest of that section, if
# any, is MindFormers' own and not MindSpore's.
SET_CONTEXT_KEYS = ("mode", "device_target", "device_id", "max_device_memory", "max_call_depth",
                    "enable_graph_kernel", "graph_kernel_flags", "save_graphs", "save_graphs_path",
                    "runtime_num_threads")
_MODES = {"GRAPH_MODE": 0, "PYNATIVE_MODE": 1}


def context_kwargs(config: Dict[str, Any]) -> Dict[str, Any]:
    """MindSpore set_context's keyword arguments for a rendered config, for every device: the
    config's `context` (mode, device_target, max_device_memory, ...), nothing else. Without
    them a model on Ascend would run in MindSpore's default mode, with no memory bound."""
    context = config.get("context") or {}
    kwargs = {key: context[key] for key in SET_CONTEXT_KEYS if key in context}
    if isinstance(kwargs.get("mode"), str):
        kwargs["mode"] = _MODES[kwargs["mode"].upper()]
    return kwargs


def set_context(config: Dict[str, Any], seed: int = 0) -> None:
    import mindspore as ms

    ms.set_context(**context_kwargs(config))
    ms.set_seed(seed)


def load(config: Dict[str, Any], checkpoint: Union[str, Path], seed: int = 0):
    """Build the model of `config` and load every one of its weights from `checkpoint` (strict).
    A damaged checkpoint, or one without the model's weights, is a SpecError naming it."""
    import mindspore as ms

    checkpoint_io.check(checkpoint)
    set_context(config, seed)
    network = model.build_network(model.load_config(config))
    missing, _ = ms.load_param_into_net(network, ms.load_checkpoint(str(checkpoint)))
    missing = [m for m in missing if not lora_merge.is_training_state(m)]
    if missing:
        raise SpecError(str(checkpoint), f"a checkpoint of this model; it lacks weights the model needs: "
                                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    network.set_train(False)
    return network


def logits(network, input_ids: np.ndarray) -> np.ndarray:
    """(batch, seq_length, vocab) float32 logits of already padded int32 ids."""
    import mindspore as ms

    out = network(ms.Tensor(np.asarray(input_ids, dtype=np.int32)))
    first = out[0] if isinstance(out, (tuple, list)) else out
    return first.astype(ms.float32).asnumpy()


def last_logits(network, input_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(batch, vocab) float32 logits at each row's last real position (`lengths` = real tokens per row)."""
    import mindspore as ms

    out = network(ms.Tensor(np.asarray(input_ids, dtype=np.int32)),
                  batch_valid_length=ms.Tensor(np.asarray(lengths, dtype=np.int32)))
    first = out[0] if isinstance(out, (tuple, list)) else out
    return first.astype(ms.float32).asnumpy().reshape(len(input_ids), -1)


def greedy(network, prompts: Sequence[Sequence[int]], *, seq_length: int, max_new_tokens: int,
           eos_id: int, pad_id: int, batch_size: int = 8) -> List[List[int]]:
    """The new tokens greedy decoding adds to each prompt (eos excluded; stops at eos or the window's end).

    The window (`seq_length`) must hold every prompt and `max_new_tokens`
    (candidates.window sizes it so): a prompt is never cut, which would drop
    its instruction header or its question.
    """
    results: List[List[int]] = []
    longest = max((len(p) for p in prompts), default=0)
    if longest + max_new_tokens > seq_length:
        raise ValueError(f"a prompt of {longest} tokens and {max_new_tokens} new ones exceed the "
                         f"{seq_length}-token window")
    for start in range(0, len(prompts), batch_size):
        chunk = [list(p) for p in prompts[start:start + batch_size]]
        rows = len(chunk)
        # Each batch is padded to batch_size so the compiled graph keeps one shape.
        ids = np.full((batch_size, seq_length), pad_id, dtype=np.int32)
        lengths = np.ones(batch_size, dtype=np.int64)
        for i, prompt in enumerate(chunk):
            ids[i, :len(prompt)] = prompt
            lengths[i] = max(len(prompt), 1)
        new: List[List[int]] = [[] for _ in range(rows)]
        done = np.zeros(batch_size, dtype=bool)
        done[rows:] = True
        for _ in range(max_new_tokens):
            if done.all():
                break
            picks = last_logits(network, ids, lengths).argmax(axis=-1)
            for i in range(rows):
                if done[i]:
                    continue
                token = int(picks[i])
                if token == eos_id or lengths[i] >= seq_length:
                    done[i] = True
                    continue
                new[i].append(token)
                ids[i, lengths[i]] = token
                lengths[i] += 1
        results.extend(new)
    return results
