"""A small byte-level BPE tokenizer trained on a run's own text, saved as a Hugging Face tokenizer.json.

The CPU profile's tiny model cannot afford Llama 3's 128,256-token vocabulary:
its embedding and output layers would be nearly all of its weights, and a
softmax over 128k ids learns nothing in minutes on two cores. A tokenizer of
a few hundred ids trained on the demo's own rows keeps the model small
enough to learn. It is a real `tokenizers` BPE in the `hf-json` format, so
the stages load it with the same code as Llama 3's tokenizer.json.

Choices, and why:
- byte-level: any text encodes (the held-out real rows and SQuAD passages
  hold characters the training text may lack), and decoding gives the bytes back;
- digits one per token: numbers keep a fixed spelling, so copying and
  comparing them is learnable by a tiny model (BPE would merge frequent
  digit groups differently in different numbers);
- special tokens first: `<pad>` 0, `<s>` 1, `</s>` 2, `<unk>` 3, the ids the
  tiny model's config uses (families.TINY_SPECIAL_TOKENS).
"""
from pathlib import Path
from typing import Iterable, Union

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]


def train(texts: Iterable[str], vocab_size: int, path: Union[str, Path]) -> int:
    """Train on `texts`, save to `path`; returns the vocabulary size reached (special tokens included)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tok.save(str(tmp))
    tmp.replace(path)
    return int(tok.get_vocab_size(with_added_tokens=True))
