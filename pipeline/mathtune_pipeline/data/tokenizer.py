"""Real tokenizers behind one small interface: Llama 3 (tokenizer.json or tiktoken
tokenizer.model) and sentencepiece `.model` (InternLM, LLaMA).

Llama 3 encodes with tiktoken whichever file it came from: a Llama 3
tokenizer.json is read into tiktoken's ranks (same vocabulary, other spelling;
llama3_convert.py), because tiktoken encodes these rows about four times faster
than `tokenizers` on the same cores. The tests prove the ids identical to the
`tokenizers` library's on the real rows. Any other tokenizer.json (not byte-level
BPE with the Llama 3 regex) is encoded by `tokenizers` itself.

Text is encoded as plain text: a special token's name inside a row (say
`<|eot_id|>`) stays text, it never becomes the control token.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from ..errors import SpecError
from . import llama3_convert as L3

FORMATS = ("hf-json", "tiktoken", "sentencepiece")


@dataclass
class TextTokenizer:
    name: str
    engine: str
    bos_id: int
    eos_id: int
    pad_id: int
    vocab_size: int
    _encode_batch: Callable[[Sequence[str], int], List[List[int]]]
    _decode: Callable[[Sequence[int]], str]

    def encode_batch(self, texts: Sequence[str], threads: int = 1) -> List[List[int]]:
        return self._encode_batch(list(texts), threads)

    def encode(self, text: str) -> List[int]:
        return self._encode_batch([text], 1)[0]

    def decode(self, ids: Sequence[int]) -> str:
        return self._decode(list(ids))


def _tiktoken(name: str, ranks, special, pattern: str, source: str) -> TextTokenizer:
    import tiktoken

    enc = tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)

    def encode_batch(texts, threads):
        if threads <= 1:
            return [enc.encode_ordinary(t) for t in texts]
        return enc.encode_ordinary_batch(texts, num_threads=threads)

    def need(token: str) -> int:
        if token not in special:
            raise SpecError("spec.model.tokenizer.uri", f"a Llama 3 tokenizer with the special token {token}")
        return special[token]

    return TextTokenizer(name=name, engine=f"tiktoken ({source})", bos_id=need("<|begin_of_text|>"),
                         eos_id=need("<|end_of_text|>"), pad_id=need("<|reserved_special_token_0|>"),
                         vocab_size=enc.n_vocab, _encode_batch=encode_batch, _decode=enc.decode)


def _first_present(vocab: dict, names: Sequence[str]) -> Optional[int]:
    for name in names:
        if name in vocab:
            return vocab[name]
    return None


def _hf_tokenizers(path: Path) -> TextTokenizer:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    vocab = tok.get_vocab(with_added_tokens=True)
    bos = _first_present(vocab, ["<|begin_of_text|>", "<s>", "<bos>", "[CLS]"])
    eos = _first_present(vocab, ["<|end_of_text|>", "</s>", "<eos>", "[SEP]"])
    pad = _first_present(vocab, ["<|reserved_special_token_0|>", "<pad>", "<unk>", "[PAD]"])
    if bos is None or eos is None:
        raise SpecError("spec.model.tokenizer.uri", f"a tokenizer.json with BOS and EOS tokens ({path})")

    def encode_batch(texts, threads):
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]

    return TextTokenizer(name=path.name, engine="tokenizers", bos_id=bos, eos_id=eos,
                         pad_id=eos if pad is None else pad, vocab_size=tok.get_vocab_size(True),
                         _encode_batch=encode_batch, _decode=lambda ids: tok.decode(ids, skip_special_tokens=False))


def _sentencepiece(path: Path) -> TextTokenizer:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    if sp.bos_id() < 0 or sp.eos_id() < 0:
        raise SpecError("spec.model.tokenizer.uri", f"a sentencepiece model with BOS and EOS ids ({path})")
    # LLaMA and InternLM pad with id 0 (<unk>) when the model defines no pad piece, as MindFormers does.
    pad = sp.pad_id() if sp.pad_id() >= 0 else max(sp.unk_id(), 0)

    def encode_batch(texts, threads):
        return sp.encode(texts, out_type=int, num_threads=max(1, threads))

    return TextTokenizer(name=path.name, engine="sentencepiece", bos_id=sp.bos_id(), eos_id=sp.eos_id(), pad_id=pad,
                         vocab_size=sp.get_piece_size(), _encode_batch=encode_batch, _decode=sp.decode)


def load_tokenizer(path: os.PathLike, fmt: str) -> TextTokenizer:
    path = Path(path)
    field = "spec.model.tokenizer"
    if fmt not in FORMATS:
        raise SpecError(f"{field}.format", f"one of {', '.join(FORMATS)} (got {fmt!r})")
    if not path.is_file():
        raise SpecError(f"{field}.uri", f"an existing tokenizer file ({path})")
    try:
        if fmt == "tiktoken":
            return _tiktoken(path.name, L3.read_tiktoken_model(path), L3.llama3_special_tokens(),
                             L3.LLAMA3_PATTERN, "tokenizer.model")
        if fmt == "sentencepiece":
            return _sentencepiece(path)
        try:
            ranks, special, pattern, doc = L3.read_hf_json(path)
        except ValueError:
            return _hf_tokenizers(path)
        model = doc["model"]
        if pattern == L3.LLAMA3_PATTERN and doc.get("normalizer") is None and model.get("ignore_merges"):
            return _tiktoken(path.name, ranks, special, pattern, "from tokenizer.json")
        return _hf_tokenizers(path)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exception for a damaged file
        raise SpecError(f"{field}.uri", f"a readable {fmt} tokenizer ({path}: {exc})") from exc
