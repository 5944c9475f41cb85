"""SQuAD F1/EM: reproduces the real 2,067-example eval log and MindFormers' own EmF1Metric."""
import contextlib
import io
import random

import pytest

from mathtune_pipeline.scoring import squad


@pytest.fixture(scope="module")
def log_pairs(real_fixtures):
    return squad.pairs_from_log(real_fixtures / "mindformers-logs" / "squad_eval_2067.log")


def test_reproduces_the_real_eval_log(log_pairs, real_fixtures):
    assert len(log_pairs) == 2067
    result = squad.score([p for p, _ in log_pairs], [a for _, a in log_pairs])
    # The log's own final line, to the last digit.
    assert result == {"f1": 71.18689963833116, "em": 54.0396710208031, "count": 2067}
    last = (real_fixtures / "mindformers-logs" / "squad_eval_2067.log").read_text().rstrip().splitlines()[-2]
    assert last == "F1 score: 71.18689963833116, Em score: 54.0396710208031, total_count: 2067"


def test_per_example_scores_match_the_log(real_fixtures):
    """Every `The F1/Em of this example is:` line of the log, example by example."""
    import ast

    text = (real_fixtures / "mindformers-logs" / "squad_eval_2067.log").read_text()
    logged = [ast.literal_eval(line.split("is: ", 1)[1]) for line in text.splitlines()
              if line.startswith("The F1/Em of this example is:")]
    pairs = squad.pairs_from_log(real_fixtures / "mindformers-logs" / "squad_eval_2067.log")
    assert len(logged) == len(pairs) == 2067
    for (pred, label), want in zip(pairs, logged):
        f1, em = squad.example_scores(pred, label)
        assert (100.0 * f1, 100.0 * em) == (want["F1"], want["Em"]), (pred, label)


def _mindformers_metric(preds, labels):
    from mindformers.core.metric import EmF1Metric

    metric = EmF1Metric()
    metric.clear()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every example
        for p, a in zip(preds, labels):
            metric.update([p], [a])
        return metric.eval()


def _random_text(rng, words):
    pieces = [rng.choice(words) for _ in range(rng.randint(0, 6))]
    text = rng.choice([" ", "", "  "]).join(pieces)
    if rng.random() < 0.3:
        text += rng.choice(["\nsecond line", "。", ".", "!", " \n"])
    if rng.random() < 0.2:
        text = "  " + text.upper()
    return text


def test_agrees_with_mindformers_emf1metric_on_random_inputs():
    rng = random.Random(20240706)
    words = ["Denver", "Broncos", "the", "1990s", "-", "北京", "郑州市", "，", "New York", "3.5", "a/b", "Cam",
             "Newton", "（注）", "x+y=z", "ÉCOLE", "100%", "“引号”", "kilogram-force", "……"]
    preds, labels = [], []
    for _ in range(400):
        label = _random_text(rng, words) or "Denver"
        pred = label if rng.random() < 0.3 else _random_text(rng, words)
        preds.append(pred)
        labels.append(label)
    want = _mindformers_metric(list(preds), list(labels))
    got = squad.score(preds, labels)
    assert got["f1"] == pytest.approx(want["F1"], abs=1e-9)
    assert got["em"] == pytest.approx(want["Em"], abs=1e-9)


def test_simple_cases():
    assert squad.example_scores("Denver Broncos", "Denver Broncos") == (1.0, 1)
    assert squad.example_scores("郑州市。", "郑州市") == (1.0, 1)
    # The prediction is cut at its first newline.
    assert squad.example_scores("Paris\nand more", "Paris") == (1.0, 1)
    f1, em = squad.example_scores("the Denver Broncos", "Denver Broncos")
    assert em == 0 and 0 < f1 < 1
    assert squad.example_scores("", "Denver") == (0.0, 0)
    # Several gold answers: the best one counts.
    assert squad.example_scores("Broncos", ["Denver", "Broncos"]) == (1.0, 1)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2 predictions for 1 answers"):
        squad.score(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="nothing to score"):
        squad.score([], [])


def test_a_truncated_log_names_the_line(tmp_path):
    bad = tmp_path / "eval.log"
    bad.write_text("pred is:\n ['x']\n something else\n")
    with pytest.raises(ValueError, match="eval.log:1"):
        squad.pairs_from_log(bad)


MULTI = [  # (prediction, SQuAD's answers: the first, then others annotators gave)
    ("Denver Broncos", ["Denver Broncos", "Broncos"]),
    ("the Broncos", ["Denver Broncos", "the Broncos", "Broncos"]),
    ("Santa Clara, California", ["Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area"]),
    ("gold", ["golden anniversary", "gold-themed", "gold"]),
]


def test_the_contest_rule_scores_the_first_answer_as_mindformers_does():
    """MindFormers' SQuAD loader gives EmF1Metric one label, the first answer;
    the contest's base scores were measured so. That is the default rule."""
    from mathtune_api.spec_scoring import Evaluation

    assert Evaluation().answer_rule == "first"
    preds = [p for p, _ in MULTI]
    first = squad.score(preds, [squad.gold_answers(a, "first") for _, a in MULTI])
    want = _mindformers_metric(list(preds), [a[0] for _, a in MULTI])
    assert (first["f1"], first["em"]) == pytest.approx((want["F1"], want["Em"]))
    best = squad.score(preds, [squad.gold_answers(a, "best") for _, a in MULTI])
    # The official all-answers rule is higher on the same predictions: the two must not be mixed.
    assert best["em"] == 75.0 and first["em"] == 25.0 and best["f1"] > first["f1"]
    with pytest.raises(ValueError):
        squad.gold_answers(["x"], "mean")
