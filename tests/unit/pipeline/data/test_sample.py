"""Sampling: quotas with upsampling, exact counts, fractions; seeded and reproducible."""
import pytest

from mathtune_pipeline.data.sample import sample
from mathtune_pipeline.errors import SpecError

KINDS = ["add"] * 500 + ["mass"] * 10 + ["simplify"] * 4 + ["english"] * 50


def test_quota_upsamples_small_types_evenly():
    chosen, out = sample(KINDS, {"mode": "quota", "seed": 1, "quotas": {"add": 100, "mass": 100, "simplify": 10}})
    assert out == {"add": 100, "mass": 100, "simplify": 10}
    mass = [i for i in chosen if KINDS[i] == "mass"]
    assert sorted(set(mass)) == list(range(500, 510)) and all(mass.count(i) == 10 for i in set(mass))
    simplify = [i for i in chosen if KINDS[i] == "simplify"]
    assert sorted(simplify.count(i) for i in set(simplify)) == [2, 2, 3, 3]   # 10 = 2 x 4 + 2 drawn once more
    adds = [i for i in chosen if KINDS[i] == "add"]
    assert len(set(adds)) == 100
    assert "english" not in {KINDS[i] for i in chosen}   # types without a quota are left out (seed 001)


def test_same_seed_same_sample_other_seed_other_sample():
    cfg = {"mode": "quota", "seed": 5, "quotas": {"add": 50, "english": 20}}
    assert sample(KINDS, cfg) == sample(KINDS, dict(cfg))
    assert sample(KINDS, cfg)[0] != sample(KINDS, {**cfg, "seed": 6})[0]


def test_rows_are_shuffled_not_grouped_by_type():
    chosen, _ = sample(KINDS, {"mode": "quota", "seed": 3, "quotas": {"add": 50, "english": 50}})
    first_half = {KINDS[i] for i in chosen[:50]}
    assert first_half == {"add", "english"}


def test_counts_never_repeat_a_row():
    chosen, out = sample(KINDS, {"mode": "counts", "seed": 1, "quotas": {"mass": 10, "add": 7}})
    assert out == {"mass": 10, "add": 7} and len(set(chosen)) == 17
    with pytest.raises(SpecError) as err:
        sample(KINDS, {"mode": "counts", "seed": 1, "quotas": {"mass": 11}})
    assert err.value.field == "spec.data.sample.quotas.mass" and "at most 10" in err.value.expected


def test_fraction_and_none():
    chosen, out = sample(KINDS, {"mode": "fraction", "seed": 1, "fraction": 0.1})
    assert len(chosen) == round(len(KINDS) * 0.1) == len(set(chosen))
    assert sum(out.values()) == len(chosen)
    chosen, _ = sample(KINDS, {"mode": "none"})
    assert sorted(chosen) == list(range(len(KINDS)))


@pytest.mark.parametrize("cfg, field", [
    ({"mode": "stratified"}, "spec.data.sample.mode"),
    ({"mode": "quota", "quotas": {}}, "spec.data.sample.quotas"),
    ({"mode": "quota", "quotas": {"add": -1}}, "spec.data.sample.quotas.add"),
    ({"mode": "quota", "quotas": {"nope": 3}}, "spec.data.sample.quotas.nope"),
    ({"mode": "fraction", "fraction": 1.5}, "spec.data.sample.fraction"),
    ({"mode": "none", "seed": "x"}, "spec.data.sample.seed"),
])
def test_bad_settings_name_the_field(cfg, field):
    with pytest.raises(SpecError) as err:
        sample(KINDS, cfg)
    assert err.value.field == field
