"""`mathtune-pipeline demo-data --out DIR [--fixtures DIR]`: inputs for the CPU example on a machine without any.

Writes `DIR/squad/dev-small.jsonl`, a small evaluation set in SQuAD's form
(context, question, answers) from passages written for this project (no
SQuAD text is shipped), `DIR/contest/train-synth.jsonl`, contest-shaped
training rows made by `synth` (so the real rows stay held out for predict),
and, with `--fixtures`, copies the real contest rows
and the Llama 3 tokenizer the example names (`DIR/contest/...`,
`DIR/tokenizers/...`) from the shared fixtures. Files already there are kept.
"""
import json
import shutil
from pathlib import Path

SQUAD_SMALL = "squad/dev-small.jsonl"
TRAIN_SYNTH = "contest/train-synth.jsonl"
# Enough rows for every contest shape to appear; few enough to train in minutes on CPU.
TRAIN_SYNTH_ROWS = 300
FROM_FIXTURES = ("contest/data_200_random.jsonl", "contest/predictions_200_base.txt",
                 "contest/predictions_200_finetuned.txt", "tokenizers/llama3-tokenizer.json")

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


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="directory to fill (the example's <dataPath>/fixtures)")
    parser.add_argument("--fixtures", default=None, help="the shared fixtures to copy the real rows and tokenizer from")


def run(args) -> int:
    out = Path(args.out)
    target = out / SQUAD_SMALL
    if not target.exists():
        print(f"demo-data: {target}: {write_squad_small(target)} SQuAD-form examples")
    train = out / TRAIN_SYNTH
    if not train.exists():
        from ..data.synth import write_synth

        train.parent.mkdir(parents=True, exist_ok=True)
        print(f"demo-data: {train}: {write_synth(train, total=TRAIN_SYNTH_ROWS, seed=0)} synthetic contest rows")
    if args.fixtures:
        source = Path(args.fixtures)
        for rel in FROM_FIXTURES:
            src, dst = source / rel, out / rel
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                print(f"demo-data: {dst} (from {src})")
    return 0
