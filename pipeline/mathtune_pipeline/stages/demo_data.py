"""`mathtune-pipeline demo-data --out DIR [--fixtures DIR]`: inputs for the CPU example on a machine without any.

Writes, under DIR (the example's `<dataPath>/fixtures`):
- `squad/dev-small.jsonl`: a small evaluation set in SQuAD's form (context,
  question, answers) from passages written for this project (no SQuAD text
  is shipped);
- `contest/train-synth.jsonl`: contest-shaped rows to fine-tune on (synth.py);
- `contest/warmup-synth.jsonl`: other synthetic rows, disjoint from those,
  that the base model is warmed up on;
- `contest/heldout-synth.jsonl`: held-out rows of the type fine-tuned
  (LEARN_TYPES), in neither of those, that predict scores;
- `tokenizers/demo-bpe.json`: a small BPE tokenizer trained on that text
  (small_tokenizer.py), in Hugging Face's format;
- `models/tiny-llama-base.ckpt`: the CPU example's base model, the tiny
  Llama trained in full on the warm-up rows and the SQuAD-form passages
  (warmup.py), so LoRA fine-tuning starts from a model that knows something.

It reads nothing: a bare clone of the project makes every input of the CPU
example.

Files already there are kept (the tokenizer and base are made again when
the synthetic rows are: they are trained on them). The base model's sizes are fixed here
(BASE_MODEL, SEQ_LENGTH, the tokenizer's VOCAB_SIZE) and must be the ones
`examples/run-cpu.yaml` names: a checkpoint of another shape fails to load.

The recipe was chosen by measurement on 2 cores (see examples/run-cpu.yaml):
the base learns the run's prompt form and every contest type except the
one the example fine-tunes on (LEARN_TYPES), which it never sees; LoRA
then has a new skill to learn and predict a real difference to measure.
"""
import json
import random
from pathlib import Path
from typing import List, Tuple

from ..data import types as T

SQUAD_SMALL = "squad/dev-small.jsonl"
TRAIN_SYNTH = "contest/train-synth.jsonl"
WARMUP_SYNTH = "contest/warmup-synth.jsonl"
HELDOUT_SYNTH = "contest/heldout-synth.jsonl"
TOKENIZER = "tokenizers/demo-bpe.json"
BASE_CHECKPOINT = "models/tiny-llama-base.ckpt"

# The type the example fine-tunes on and predict scores, as (rows to fine-tune
# on, held-out rows for predict): mass on the contest's own grid (density and
# volume 1..10, the 100 rows the real data has), split 70/30, none of them in
# the warm-up. The base knows the 10 x 10 times table only as
# `计算 a * b 等于多少？` (times_table, in the warm-up) and has never seen a mass
# question: it answers the 30 held-out ones 0 of 30. The fine-tune teaches
# the mass form (`d * v = P` then `P 克`) and reuses the table.
# Measured (2 shared cores, 30 held-out rows, base 0/30 in every case):
#   the 200 real rows' power/mass (17 + 1):  0/18 at 10 and 20 epochs (1/18)
#   power with n = 1 (a copy), 250 rows:      0/30 at 10 epochs: LoRA does not
#     teach a 2-layer model to copy 6 digits (-498.13 -> -499.33)
#   power n=1 + simplify + mass, 250 rows:    4/65 (mass 4/30) at 10 epochs
#   simplify p < q <= 20, 150 rows:           0/30 at 16 epochs (form not learnt)
#   mass, base without the table:             5/30 at 30 epochs
#   mass, base with the table (this recipe): 4/30 at 20 epochs, 11/30 at 40,
#     17/30 at 60 (seed 0); seed 1: 14/30 at 30, 11/30 at 60
LEARN_TYPES = {T.MASS: (70, 30)}
# Warm-up rows of every other Chinese type (English: LaTeX, long; simplify: 45 rows in all);
# multiply's are the times table (times_table).
WARMUP_ROWS_PER_TYPE = 60
WARMUP_TYPES = (T.ADD, T.SUBTRACT, T.MULTIPLY, T.DIVIDE, T.SQRT, T.EQUATION, T.DISCOUNT, T.MEAN, T.AREA,
                T.SALES, T.FUNCTION)
# Each SQuAD-form passage this many times in the warm-up: the base model's
# "original capability", which the evaluate stage checks fine-tuning keeps.
SQUAD_REPEATS = 4
VOCAB_SIZE = 1024
SEQ_LENGTH = 128
BASE_MODEL = {"numLayers": 2, "hiddenSize": 128, "numHeads": 4, "vocabSize": VOCAB_SIZE}
# 16 epochs of Adam at 5e-3 (1,504 steps then; 1,584 with the times table), the best base measured: the
# example's fine-tune then ended at loss 1.16, against 1.68 from a base of 6
# epochs at 4e-3 on 100 rows a type, and 2.6 from 3 epochs of AdamWeightDecay.
# 1e-2 diverged.
WARMUP_EPOCHS, WARMUP_BATCH, WARMUP_LR = 16, 8, 5.0e-3
# The example's prompt form: the base learns it, fine-tuning keeps it.
DATA_FORM = {"chainOfThought": {"enabled": True}, "template": {"name": "alpaca"}, "dedupe": False}

# (context, question, answer): the answer is a span of the context, as in SQuAD.
PASSAGES = [
    ("The Yellow River is the second longest river in China. It flows for about 5,464 kilometres "
     "from the Bayan Har Mountains to the Bohai Sea.", "Into which sea does the Yellow River flow?", "the Bohai Sea"),
    ("The Yellow River is the second longest river in China. It flows for about 5,464 kilometres "
     "from the Bayan Har Mountains to the Bohai Sea.", "How long is the Yellow River?", "about 5,464 kilometres"),
    ("A rectangle has four right angles. Its area is the product of its length and its width, "
     "so a rectangle 6 centimetres long and 4 centimetres wide covers 24 square centimetres.",
     "What is the area of a rectangle 6 centimetres long and 4 wide?", "24 square centimetres"),
    ("Water boils at 100 degrees Celsius at sea level. On a high mountain the air pressure is lower, "
     "so water boils at a lower temperature there.", "At what temperature does water boil at sea level?",
     "100 degrees Celsius"),
    ("The abacus is a counting frame with beads on rods. Merchants in ancient China used the suanpan, "
     "an abacus with two beads above the bar and five below.", "What is the Chinese abacus called?", "the suanpan"),
    ("Ada Lovelace wrote notes on Charles Babbage's Analytical Engine in 1843. Her notes include what "
     "many consider the first published computer program.", "Whose engine did Ada Lovelace write about?",
     "Charles Babbage"),
    ("Ada Lovelace wrote notes on Charles Babbage's Analytical Engine in 1843. Her notes include what "
     "many consider the first published computer program.", "In which year did Ada Lovelace write her notes?",
     "1843"),
    ("A prime number has exactly two divisors: one and itself. The smallest prime is 2, the only even prime.",
     "What is the smallest prime number?", "2"),
    ("Mount Everest stands on the border between Nepal and China. Its summit is 8,849 metres above sea level, "
     "the highest on Earth.", "How high is the summit of Mount Everest?", "8,849 metres"),
    ("The Great Wall was built over many centuries. Most of the wall seen by visitors today was built "
     "during the Ming dynasty.", "During which dynasty was most of the visible wall built?", "the Ming dynasty"),
    ("Photosynthesis lets plants turn light, water and carbon dioxide into sugar. Oxygen is released "
     "as a by-product.", "What gas do plants release during photosynthesis?", "Oxygen"),
    ("The metre was first defined in 1793 as one ten-millionth of the distance from the equator to the "
     "North Pole.", "When was the metre first defined?", "1793"),
    ("A kilogram of feathers and a kilogram of iron weigh the same. The iron takes far less space "
     "because it is much denser.", "Why does the iron take less space?", "because it is much denser"),
    ("Huawei's Ascend 910 is an AI processor designed for training neural networks. Servers such as "
     "the Atlas 800 hold eight of them.", "How many Ascend 910 processors does an Atlas 800 hold?", "eight"),
    ("The Pythagorean theorem says that in a right triangle the square of the hypotenuse equals the sum "
     "of the squares of the other two sides.", "What does the square of the hypotenuse equal?",
     "the sum of the squares of the other two sides"),
    ("Tea was first drunk in China, where legend credits the emperor Shennong with its discovery "
     "around 2737 BC.", "Which emperor is credited with discovering tea?", "Shennong"),
    ("The speed of light in a vacuum is about 299,792 kilometres per second. Light from the Sun takes "
     "a little over eight minutes to reach Earth.", "How long does sunlight take to reach Earth?",
     "a little over eight minutes"),
    ("A leap year has 366 days. The extra day, 29 February, keeps the calendar in step with the seasons.",
     "Which date is the extra day of a leap year?", "29 February"),
    ("The Grand Canal links Beijing with Hangzhou. At about 1,800 kilometres it is the longest canal "
     "built by people.", "Which city does the Grand Canal link with Beijing?", "Hangzhou"),
    ("Zero as a number in its own right was described by the Indian mathematician Brahmagupta in the "
     "seventh century.", "Which mathematician described zero as a number?", "Brahmagupta"),
    ("A dozen is twelve of something. A gross is a dozen dozens, which is 144.", "How many is a gross?", "144"),
    ("Silk was made in China for thousands of years before the trade routes now called the Silk Road "
     "carried it west.", "What are the trade routes that carried silk west called?", "the Silk Road"),
    ("The boiling point of ethanol is about 78 degrees Celsius, lower than that of water.",
     "What is the boiling point of ethanol?", "about 78 degrees Celsius"),
    ("Pi is the ratio of a circle's circumference to its diameter. Rounded to two decimals it is 3.14.",
     "What is pi rounded to two decimals?", "3.14"),
]


def write_squad_small(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for context, question, answer in PASSAGES:
        assert answer in context, answer  # a span, as SQuAD answers are
        lines.append(json.dumps({"context": context, "question": question, "answers": [answer]}, ensure_ascii=False))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return len(lines)


def times_table() -> List[Tuple[str, str]]:
    """The warm-up's multiply rows: a * b for a, b in 1..10, in the contest's multiply form."""
    return [(f"计算 {a} * {b} 等于多少？", f"{a} * {b} = {a * b}") for a in range(1, 11) for b in range(1, 11)]


def synthetic_rows(seed: int = 0) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]], List[Tuple[str, str]]]:
    """(fine-tune rows, warm-up rows, held-out rows): distinct synthetic rows, no question in two of them."""
    from ..data.synth import distinct_rows

    rng = random.Random(seed)
    tune: List[Tuple[str, str]] = []
    held: List[Tuple[str, str]] = []
    for kind, (n_tune, n_held) in LEARN_TYPES.items():
        rows = distinct_rows(kind, n_tune + n_held, rng)
        tune += rows[:n_tune]
        held += rows[n_tune:]
    rng.shuffle(tune)
    rng.shuffle(held)
    asked = {q for q, _ in tune + held}
    warm = [row for kind in WARMUP_TYPES
            for row in (times_table() if kind == T.MULTIPLY else distinct_rows(kind, WARMUP_ROWS_PER_TYPE, rng))
            if row[0] not in asked]
    rng.shuffle(warm)
    return tune, warm, held


def write_rows(path: Path, rows: List[Tuple[str, str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps({"problem": q, "solution": a}, ensure_ascii=False) + "\n" for q, a in rows),
                   encoding="utf-8")
    tmp.replace(path)
    return len(rows)


def rendered(path: Path) -> List[Tuple[str, str]]:
    """(prompt, response) of a contest-jsonl file, as prepare renders them for the example."""
    from ..data import loaders
    from .prepare import prepare_rows

    prepared = prepare_rows(loaders.load(path.read_bytes(), "contest-jsonl"), DATA_FORM)
    rows = [json.loads(line) for block in prepared.blocks for line in block.splitlines() if line.strip()]
    return [(r["prompt"], r["response"]) for r in rows]


def squad_pairs() -> List[Tuple[str, str]]:
    from ..scoring import squad_data

    return [(squad_data.prompt({"context": c, "question": q, "answers": [a]}), a) for c, q, a in PASSAGES]


def base_spec():
    from ..spec import with_defaults

    return with_defaults({"profile": "cpu", "model": {"family": "tiny-llama", "tiny": BASE_MODEL},
                          "data": {"seqLength": SEQ_LENGTH}})


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="directory to fill (the example's <dataPath>/fixtures)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows and the warm-up")


def run(args) -> int:
    out = Path(args.out)
    target = out / SQUAD_SMALL
    if not target.exists():
        print(f"demo-data: {target}: {write_squad_small(target)} SQuAD-form examples")
    train, warm, held = out / TRAIN_SYNTH, out / WARMUP_SYNTH, out / HELDOUT_SYNTH
    tokenizer_path, base = out / TOKENIZER, out / BASE_CHECKPOINT
    fresh = not train.exists() or not warm.exists() or not held.exists()
    if fresh:
        tune_rows, warm_rows, held_rows = synthetic_rows(getattr(args, "seed", 0))
        print(f"demo-data: {train}: {write_rows(train, tune_rows)} synthetic rows to fine-tune on")
        print(f"demo-data: {warm}: {write_rows(warm, warm_rows)} other synthetic rows for the base model's warm-up")
        print(f"demo-data: {held}: {write_rows(held, held_rows)} held-out rows of the fine-tuned types, for predict")
    if fresh or not tokenizer_path.exists() or not base.exists():
        # New rows: the tokenizer and base made from the old ones would not match them.
        make_base(train, warm, tokenizer_path, base, seed=getattr(args, "seed", 0), retokenize=fresh)
    return 0


def make_base(train: Path, warm: Path, tokenizer_path: Path, base: Path, seed: int = 0,
              retokenize: bool = False) -> None:
    """The tokenizer (on all the demo's text) and the warmed-up base model (on the warm-up text)."""
    from ..data import small_tokenizer
    from ..data.tokenizer import load_tokenizer
    from ..mindformers import model, warmup

    model.use_output_dir(base.parent / ".mindformers")   # MindFormers' logs, not in the working directory

    tune_pairs, warm_pairs = rendered(train), rendered(warm) + squad_pairs() * SQUAD_REPEATS
    if retokenize or not tokenizer_path.exists():
        size = small_tokenizer.train([p + r for p, r in tune_pairs + warm_pairs], VOCAB_SIZE, tokenizer_path)
        if size != VOCAB_SIZE:
            raise RuntimeError(f"the demo tokenizer reached {size} ids, not {VOCAB_SIZE}: the text is too small "
                               f"for the vocabulary the example's model is sized for")
        print(f"demo-data: {tokenizer_path}: BPE tokenizer of {size} ids")
    result = warmup.train(base_spec(), load_tokenizer(tokenizer_path, "hf-json"), warm_pairs, base,
                          epochs=WARMUP_EPOCHS, batch_size=WARMUP_BATCH, learning_rate=WARMUP_LR, seed=seed,
                          log=lambda line: print(f"demo-data: {line}", flush=True))
    print(f"demo-data: {base}: base model warmed up on {result['rows']} rows in {result['steps']} steps, "
          f"loss {result['firstLoss']:.2f} -> {result['lastLoss']:.2f}")
