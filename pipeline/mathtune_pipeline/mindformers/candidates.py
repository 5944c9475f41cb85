"""The models evaluate and predict score (the base model, each merged epoch) and how they generate.

Both stages load the same things: the training config the run used
(`train/finetune.yaml`) turned into a one-card inference config, the run's
tokenizer, and per candidate a checkpoint with every weight in it (the base
checkpoint, or merge's `epoch_<e>/merged.ckpt`). Generation is greedy: on
CPU through the model's own forward (inference.py); on Ascend through
MindFormers' `generate` with `use_past` (incremental decoding, NPU kernels),
which cannot run on this machine.
"""
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

from mathtune_api import MathFinetuneSpec as Spec

from ..artifacts import read_manifest, sha256_file, sha256_json
from ..data.sources import fetch
from ..data.tokenizer import TextTokenizer, load_tokenizer
from ..errors import SpecError
from . import base_model, families, inference, render

BATCH = 8
WINDOW_MULTIPLE = 64  # windows are rounded up to this, so near prompt sets share compiled shapes


@dataclass
class Candidate:
    key: str          # "base" or the epoch number as text, the result JSON's keys
    checkpoint: Path

    @property
    def label(self) -> str:
        return "base model" if self.key == "base" else f"epoch {self.key}"


def train_config(run_dir: Path) -> Dict[str, Any]:
    path = run_dir / "train" / "finetune.yaml"
    if not path.is_file():
        raise SpecError(str(path), "the train stage's config (run train first)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def epochs_merged(run_dir: Path, wanted: Sequence[int] = ()) -> List[Candidate]:
    manifest = read_manifest(run_dir / "merge")
    if not manifest or manifest.get("stage") != "merge":
        raise SpecError(str(run_dir / "merge"), "a finished merge stage (run merge first)")
    saved = {int(e): run_dir / v["merged"] for e, v in manifest["outputs"]["epochs"].items()}
    if wanted:
        absent = sorted(set(wanted) - set(saved))
        if absent:
            raise SpecError("spec.evaluation.epochs", f"epochs that training saved ({sorted(saved)}; not {absent})")
        saved = {e: p for e, p in saved.items() if e in wanted}
    return [Candidate(str(e), p) for e, p in sorted(saved.items())]


def base_candidate(spec: Spec, run_dir: Path) -> Candidate:
    path = base_model.checkpoint_path(spec, run_dir)
    if not path.is_file():
        raise SpecError("spec.model.checkpoint", f"the base checkpoint ({path} not found)")
    return Candidate("base", path)


def tokenizer_for(spec: Spec, run_dir: Path) -> (TextTokenizer, Path):
    tok = spec.model.tokenizer
    path = fetch(tok.uri, spec.storage.data_path, run_dir / "downloads", field="spec.model.tokenizer.uri")
    return load_tokenizer(path, tok.format), path


def base_cache_key(candidate: Candidate, *parts: Any) -> str:
    """A base model's scores depend only on its weights and what it was asked: reusable across runs."""
    stat = candidate.checkpoint.stat()
    weights = sha256_file(candidate.checkpoint) if stat.st_size < (256 << 20) else \
        f"{candidate.checkpoint.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return sha256_json({"weights": weights, "parts": parts})


def cache_dir(run_dir: Path) -> Path:
    """Shared by the runs of one work volume: `<dataPath>/runs/.cache/`."""
    return Path(run_dir).resolve().parent / ".cache"


def window(prompts: Sequence[Sequence[int]], max_new_tokens: int, limit: int, field: str) -> int:
    """The inference window (the model's seq_length) for these prompts: the longest prompt plus
    `max_new_tokens`, rounded up to WINDOW_MULTIPLE, at most `limit` (the model's positions).

    The training seq_length does not bound it: evaluation prompts (SQuAD
    paragraphs, ~800 Llama 3 tokens) are longer than training rows. A prompt
    that does not fit even `limit` is bad input, never cut."""
    if not prompts:
        return min(limit, WINDOW_MULTIPLE)
    row = max(range(len(prompts)), key=lambda i: len(prompts[i]))
    need = len(prompts[row]) + max_new_tokens
    if need > limit:
        raise SpecError(field, f"prompts of at most {limit - max_new_tokens} tokens, so that with "
                               f"{max_new_tokens} new tokens they fit the model's {limit} positions "
                               f"(row {row + 1}'s prompt has {len(prompts[row])})")
    return min(limit, -(-need // WINDOW_MULTIPLE) * WINDOW_MULTIPLE)


class Generator:
    """Greedy continuations of prompts by one candidate after another."""

    def __init__(self, spec: Spec, run_dir: Path):
        self.spec = spec
        self.on_cpu = spec.profile == "cpu"
        # Incremental decoding (use_past) where MindFormers' generate runs; the
        # checkpoint is each candidate's, given when it is loaded.
        self.config = render.inference_config(train_config(run_dir), run_mode="predict", load_checkpoint="",
                                              max_new_tokens=1, use_past=not self.on_cpu)
        self.tokenizer, self.tokenizer_path = tokenizer_for(spec, run_dir)
        mc = self.config["model"]["model_config"]
        self.seq_length = int(mc["seq_length"])  # training's; each generate() sizes its own window
        self.max_positions = families.max_positions(self.config)
        families.check_vocabulary(spec, self.tokenizer.vocab_size, int(mc["vocab_size"]))

    def encode(self, prompts: Sequence[str]) -> List[List[int]]:
        """As tokenize lays rows out: BOS, then the prompt's tokens."""
        return [[self.tokenizer.bos_id] + ids for ids in self.tokenizer.encode_batch(list(prompts))]

    def window(self, prompts: Sequence[str], max_new_tokens: int, field: str) -> int:
        """The window these prompts run in; bad input (naming `field`) if one cannot fit."""
        return window(self.encode(prompts), max_new_tokens, self.max_positions, field)

    def generate(self, candidate: Candidate, prompts: Sequence[str], max_new_tokens: int,
                 progress: Optional[Callable[[int, int], None]] = None, *, field: str) -> List[str]:
        """`field` is the spec field the prompts come from, named if one is too long for the model."""
        ids = self.encode(prompts)
        seq_length = window(ids, max_new_tokens, self.max_positions, field)
        config = copy.deepcopy(self.config)
        config["model"]["model_config"]["seq_length"] = seq_length
        network = inference.load(config, candidate.checkpoint, seed=self.spec.training.seed)
        texts: List[str] = []
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            if self.on_cpu:
                new = inference.greedy(network, chunk, seq_length=seq_length, max_new_tokens=max_new_tokens,
                                       eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id, batch_size=BATCH)
            else:
                new = _generate_on_npu(network, chunk, max_new_tokens, self.tokenizer.eos_id, self.tokenizer.pad_id)
            texts.extend(self.tokenizer.decode(t) for t in new)
            if progress:
                progress(len(texts), len(ids))
        return texts


def right_padded(prompts: List[List[int]], pad_id: int) -> List[List[int]]:
    """A batch as MindFormers' generate takes it: one length, padded on the
    right with pad ids (it does np.array(input_ids) and refuses ragged lists;
    it finds each prompt's end as its last non-pad token)."""
    width = max(len(p) for p in prompts)
    return [list(p) + [pad_id] * (width - len(p)) for p in prompts]


def until_eos(ids: Sequence[int], eos_id: int) -> List[int]:
    """The generated ids before the first EOS: MindFormers keeps the EOS it
    stopped on, which would decode into the answer (`<|end_of_text|>`)."""
    ids = [int(i) for i in ids]
    return ids[:ids.index(eos_id)] if eos_id in ids else ids


def _generate_on_npu(network, prompts: List[List[int]], max_new_tokens: int, eos_id: int, pad_id: int):
    """MindFormers' own generate (use_past, NPU kernels). Not runnable on CPU: the boundary of the
    tests, which check the batch it is given and what is kept of its outputs."""
    outputs = network.generate(right_padded(prompts, pad_id), max_new_tokens=max_new_tokens, min_new_tokens=1,
                               do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
    # Each output is the prompt without its padding, then the new tokens.
    return [until_eos(out[len(prompt):], eos_id) for out, prompt in zip(outputs, prompts)]

