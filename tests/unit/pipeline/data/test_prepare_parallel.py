"""The contest fast path (forked workers, fingerprints) gives exactly what the plain
in-memory path gives, including bad rows, formatting-variant duplicates and
fingerprint collisions."""
import json
import random

import numpy as np
import pytest

from mathtune_api.spec_data import Data
from mathtune_pipeline.data.dedupe import first_by_fingerprint
from mathtune_pipeline.data.loaders import load
from mathtune_pipeline.data.synth import synth_rows
from mathtune_pipeline.data import types as T
from mathtune_pipeline.stages import prepare as P


def messy_contest_file() -> bytes:
    rng = random.Random(11)
    rows = list(synth_rows(3000, seed=5))
    lines = [json.dumps({"problem": p, "solution": s}, ensure_ascii=False) for p, s in rows]
    # Same pairs spelled differently (key order, spacing, escapes), far from their first copy.
    for p, s in rng.sample(rows[:1000], 40):
        lines.append(json.dumps({"solution": s, "problem": p}))
    # Questions wrapped in a prompt, bad rows, blank lines, scattered.
    for p, s in rng.sample(rows, 20):
        wrapped = f"Below is an instruction.\n\n### Instruction:\n{p}\n\n### Response:"
        lines.insert(rng.randrange(len(lines)), json.dumps({"problem": wrapped, "solution": s}, ensure_ascii=False))
    for junk in ["{oops", "[]", '{"problem": "q"}', "", '{"problem": 3, "solution": "x"}', "{oops"]:
        lines.insert(rng.randrange(len(lines)), junk)
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("dedupe", [True, False])
def test_fast_path_equals_the_plain_path(monkeypatch, dedupe):
    raw = messy_contest_file()
    config = Data(source={"uri": "unread.jsonl"}, dedupe=dedupe, chainOfThought={"enabled": True},
                  sample={"mode": "quota", "seed": 9, "quotas": {k: 40 for k in T.CONTEST_TYPES}})
    s = P.settings(config)
    plain = P.finish(P.table_from_rows(load(raw, "contest-jsonl", drop_repeats=dedupe), s, "contest-jsonl"), s,
                     processes=1)
    # Small chunks: several workers, several bulk parses each, bad rows inside some of them.
    monkeypatch.setattr(P, "SCAN_CHUNK", 97)
    monkeypatch.setattr(P, "RENDER_CHUNK", 50)
    fast = P.finish(P.table_from_contest(raw, s, processes=2), s, processes=2)
    assert fast.counts == plain.counts
    assert "".join(fast.blocks) == "".join(plain.blocks)
    c = fast.counts
    assert c["bad"] == 5 and len(c["badExamples"]) == 5 and c["unwrapped"] == 20   # a blank line is no row
    assert c["read"] == c["deduped"] + c["duplicates"] + c["bad"]
    assert (c["duplicates"] > 40) == dedupe
    assert len(fast.blocks) > 1, "the render step should have been split over workers"


def test_colliding_fingerprints_never_drop_a_row():
    pairs = [("a", "1"), ("b", "2"), ("a", "1"), ("c", "3"), ("b", "2"), ("d", "4")]
    prints = np.zeros(len(pairs), dtype=np.int64)          # every fingerprint collides
    valid = np.ones(len(pairs), dtype=bool)
    valid[5] = False
    keep = first_by_fingerprint(prints, valid, lambda idx: [pairs[i] for i in idx])
    assert keep.tolist() == [0, 1, 3]
    prints = np.arange(len(pairs), dtype=np.int64)          # no collision, no duplicate seen
    assert first_by_fingerprint(prints, np.ones(6, bool), lambda idx: [pairs[i] for i in idx]).tolist() == list(range(6))
