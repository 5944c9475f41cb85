"""Llama 3's tokenizer in both of its file formats, converted either way.

Hugging Face ships `tokenizer.json` (byte-level BPE: tokens spelled in GPT-2's
byte-to-unicode alphabet, a merges list, a Split pre-tokenizer with the
Llama 3 regex); MindFormers' Llama 3 reads Meta's tiktoken `tokenizer.model`
(one `base64(token bytes) rank` per line, the regex and 256 special tokens
living in code). Same vocabulary, two spellings: these functions convert one
into the other, and the tests prove the ids identical on real rows.
"""
import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# Meta's Llama 3 pre-tokenizer regex (also in every Llama 3 tokenizer.json).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_BASE_VOCAB = 128000
LLAMA3_SPECIAL_COUNT = 256


def llama3_special_tokens() -> Dict[str, int]:
    """Meta's names for ids 128000..128255 (tiktoken files do not carry them)."""
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    names += [f"<|reserved_special_token_{i}|>" for i in range(5, LLAMA3_SPECIAL_COUNT - 5)]
    return {name: LLAMA3_BASE_VOCAB + i for i, name in enumerate(names)}


@lru_cache(maxsize=1)
def byte_alphabet() -> Dict[int, str]:
    """GPT-2's byte -> printable character map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def token_bytes(spelled: str) -> bytes:
    reverse = {c: b for b, c in byte_alphabet().items()}
    return bytes(reverse[c] for c in spelled)


def spell(raw: bytes) -> str:
    alphabet = byte_alphabet()
    return "".join(alphabet[b] for b in raw)


def read_hf_json(path: Path) -> Tuple[Dict[bytes, int], Dict[str, int], str, dict]:
    """(mergeable ranks, special tokens, pre-tokenizer regex, the parsed json) of a byte-level BPE tokenizer.json."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    model = doc.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError(f"{path}: a BPE model (got {model.get('type')!r})")
    reverse = {c: b for b, c in byte_alphabet().items()}
    try:
        ranks = {bytes(reverse[c] for c in tok): rank for tok, rank in model["vocab"].items()}
    except KeyError as exc:
        raise ValueError(f"{path}: a byte-level vocabulary (character {exc} is not in the byte alphabet)") from None
    special = {t["content"]: t["id"] for t in doc.get("added_tokens", []) if t.get("special")}
    pattern = _split_pattern(doc.get("pre_tokenizer") or {})
    return ranks, special, pattern, doc


def _split_pattern(pre: dict) -> str:
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split" and "Regex" in (step.get("pattern") or {}):
            return step["pattern"]["Regex"]
    raise ValueError("a Split pre-tokenizer with a regex (Llama 3 style)")


def write_tiktoken_model(ranks: Dict[bytes, int], path: Path) -> None:
    lines = [f"{base64.b64encode(tok).decode()} {rank}" for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])]
    Path(path).write_text("\n".join(lines) + "\n", encoding="ascii")


def read_tiktoken_model(path: Path) -> Dict[bytes, int]:
    ranks: Dict[bytes, int] = {}
    for number, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: `base64-token rank` ({exc})") from None
    return ranks


def hf_json_to_tiktoken(tokenizer_json: Path, out_model: Path) -> None:
    ranks, _, pattern, _ = read_hf_json(tokenizer_json)
    if pattern != LLAMA3_PATTERN:
        raise ValueError(f"{tokenizer_json}: the Llama 3 pre-tokenizer regex (a tiktoken file cannot carry another)")
    write_tiktoken_model(ranks, out_model)


def merges_from_ranks(ranks: Dict[bytes, int]) -> List[Tuple[bytes, bytes]]:
    """BPE merges equivalent to tiktoken's rank order: every split of every token
    into two tokens, ordered by the merged token's rank, then by the parts' ranks."""
    merges: List[Tuple[int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        local = [(token[:i], token[i:]) for i in range(1, len(token))
                 if token[:i] in ranks and token[i:] in ranks]
        local.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges.extend((rank, left, right) for left, right in local)
    merges.sort(key=lambda m: m[0])
    return [(left, right) for _, left, right in merges]


def tiktoken_to_hf_json(model_path: Path, out_json: Path, special: Optional[Dict[str, int]] = None) -> None:
    """A Hugging Face tokenizer.json equivalent to a Llama 3 tiktoken `tokenizer.model`."""
    ranks = read_tiktoken_model(model_path)
    special = special or llama3_special_tokens()
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for name, i in sorted(special.items(), key=lambda kv: kv[1])],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": {spell(tok): rank for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])},
                  "merges": [[spell(a), spell(b)] for a, b in merges_from_ranks(ranks)]},
    }
    Path(out_json).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
