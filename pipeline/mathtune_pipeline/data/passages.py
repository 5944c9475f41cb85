"""Reading-comprehension examples in SQuAD's form, made up: a skill, not a memory.

The CPU example's base model must have an "original ability" that a
fine-tune can lose and a replay mix can keep. Answering questions about
passages it was trained on is memory: no other data protects it. Answering
from a passage it has never seen is a skill: the base learns it on one set
of passages, evaluate asks about another, and a replay mix draws from a
third. Each passage states one or two facts about made-up names and numbers
in one of a few forms; each question asks for one of them, and its answer is
a span of the passage (as in SQuAD).

`examples(n, rng)` makes distinct examples; `split()` makes disjoint sets
(no passage in two of them).
"""
import random
from typing import Callable, Dict, List, Sequence, Tuple

Example = Tuple[str, str, str]   # context, question, answer (a span of the context)

_SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "to", "vi", "del", "mar", "no", "pe", "qui", "ran", "su", "ta",
              "bel", "cor", "dun", "fa", "gil", "hol", "ja", "ler", "mon", "ost", "pra", "tel", "vor", "wen", "zu")
_COMMON = {"The", "On", "In"}
# Each passage names one word of several of these; a question asks for one
# of them. Guessing gets about one in ten right; reading gets them all.
COLOURS = ("red", "blue", "green", "white", "black", "yellow", "grey", "brown", "orange", "purple")
ANIMALS = ("goats", "sheep", "horses", "ducks", "geese", "cows", "pigs", "hens", "rabbits", "donkeys")
FRUITS = ("apples", "pears", "plums", "cherries", "grapes", "peaches", "lemons", "melons", "figs", "oranges")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TOOLS = ("hammers", "saws", "ropes", "nails", "ladders", "buckets", "shovels", "baskets", "knives", "brooms")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()


def _farm(rng):
    person, animal, colour, fruit, day = (_name(rng), rng.choice(ANIMALS), rng.choice(COLOURS),
                                          rng.choice(FRUITS), rng.choice(DAYS))
    context = f"{person} keeps {animal} on {_a(colour)} farm and sells {fruit} at the market on {day}."
    return [(context, f"Which animals does {person} keep?", animal),
            (context, f"What colour is the farm of {person}?", colour),
            (context, f"What does {person} sell at the market?", fruit),
            (context, f"On which day does {person} go to the market?", day)]


def _shop(rng):
    town, colour, tool, day = _name(rng), rng.choice(COLOURS), rng.choice(TOOLS), rng.choice(DAYS)
    context = f"The shop in {town} has {_a(colour)} door, sells {tool}, and is closed on {day}."
    return [(context, f"What colour is the door of the shop in {town}?", colour),
            (context, f"What does the shop in {town} sell?", tool),
            (context, f"On which day is the shop in {town} closed?", day)]


def _garden(rng):
    person, fruit, animal, colour = _name(rng), rng.choice(FRUITS), rng.choice(ANIMALS), rng.choice(COLOURS)
    context = f"In the garden of {person} grow {fruit}; {animal} sleep under {_a(colour)} tree."
    return [(context, f"What grows in the garden of {person}?", fruit),
            (context, f"Which animals sleep in the garden of {person}?", animal),
            (context, f"What colour is the tree in the garden of {person}?", colour)]


def _boat(rng):
    boat, colour, tool, day, animal = (_name(rng), rng.choice(COLOURS), rng.choice(TOOLS), rng.choice(DAYS),
                                       rng.choice(ANIMALS))
    context = f"On {day} the {colour} boat {boat} carried {tool} and {animal} across the lake."
    return [(context, f"What colour is the boat {boat}?", colour),
            (context, f"On which day did the boat {boat} cross the lake?", day),
            (context, f"Which animals did the boat {boat} carry?", animal),
            (context, f"What did the boat {boat} carry besides animals?", tool)]


FORMS: Sequence[Callable[[random.Random], List[Example]]] = (_farm, _shop, _garden, _boat)


def examples(n: int, rng: random.Random) -> List[Example]:
    """`n` distinct examples, the forms in turn, one question per passage (chosen at random)."""
    out: List[Example] = []
    seen = set()
    form = 0
    while len(out) < n:
        choices = FORMS[form % len(FORMS)](rng)
        context, question, answer = rng.choice(choices)
        if context not in seen:
            assert answer in context, (answer, context)  # a span, as SQuAD answers are
            seen.add(context)
            out.append((context, question, answer))
            form += 1
    return out


def split(sizes: Dict[str, int], seed: int) -> Dict[str, List[Example]]:
    """Disjoint sets of the given sizes: no passage (nor name) is in two of them."""
    rng = random.Random(f"{seed}:passages")
    pool = examples(sum(sizes.values()) * 3, rng)
    out: Dict[str, List[Example]] = {}
    used_names: set = set()
    it = iter(pool)
    for name, size in sizes.items():
        chosen: List[Example] = []
        names_here: set = set()
        for example in it:
            words = {w.strip(".,;?") for w in example[0].split() if w[:1].isupper()} - _COMMON - set(DAYS)
            if words & used_names:
                continue
            chosen.append(example)
            names_here |= words
            if len(chosen) == size:
                break
        if len(chosen) < size:
            raise RuntimeError(f"not enough distinct passages for {name} ({len(chosen)} of {size})")
        used_names |= names_here
        out[name] = chosen
    return out
