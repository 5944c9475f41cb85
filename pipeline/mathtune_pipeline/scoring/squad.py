"""SQuAD F1/EM as MindFormers' EmF1Metric computes them (the contests' "original capability").

The definitions follow the metric the contest logs were produced with, not the
official SQuAD script, so the numbers are comparable with the seeds' reports:

- the prediction is stripped and cut at its first newline;
- text is lower-cased and split into segments: every CJK character or
  punctuation mark is a segment of its own, runs of other characters are cut
  by jieba (so an English space is a segment too);
- F1 uses the longest common *contiguous* run of segments (punctuation removed)
  as the overlap, precision over the prediction's segments, recall over the
  label's;
- EM compares the two strings with punctuation removed.

Scores are percentages averaged over examples. The test suite checks this
module against the real 2,067-pair eval log and MindFormers' own metric.
"""
import ast
import re
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

# The punctuation set of the contest metric. "……" is a two-character entry in
# the original list, so a single character never matches it: kept as is, so
# the scores stay comparable.
PUNCTUATION = frozenset(['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
                         '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
                         '「', '」', '（', '）', '－', '～', '『', '』'])
_CJK = re.compile(r'[\u4e00-\u9fa5]')


def _cut(text: str) -> List[str]:
    import jieba  # ships with MindFormers; imported late so scoring math never needs it

    return list(jieba.cut(text))


def segments(text: str, drop_punctuation: bool = False) -> List[str]:
    """Lower-case `text` and split it into the metric's segments."""
    out: List[str] = []
    run = ""
    for char in str(text).lower().strip():
        if drop_punctuation and char in PUNCTUATION:
            continue
        if _CJK.match(char) or char in PUNCTUATION:
            if run:
                out.extend(_cut(run))
                run = ""
            out.append(char)
        else:
            run += char
    if run:
        out.extend(_cut(run))
    return out


def without_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in PUNCTUATION)


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous run of equal segments in `a` and `b`."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                if current[j + 1] > best:
                    best = current[j + 1]
        previous = current
    return best


def first_line(prediction: str) -> str:
    """What the metric scores of a generated answer: stripped, up to the first newline."""
    return str(prediction).strip().split("\n")[0]


def f1(prediction: str, answer: str) -> float:
    pred = segments(prediction, drop_punctuation=True)
    gold = segments(answer, drop_punctuation=True)
    overlap = longest_common_run(gold, pred)
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred)
    recall = overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact(prediction: str, answer: str) -> int:
    return int(without_punctuation(prediction) == without_punctuation(answer))


# How a prediction meets a question's gold answers. "first": the first answer
# only, as MindFormers' SQuAD loader hands EmF1Metric one label and as the
# contest's base scores (59.87 / 44.17) were measured; "best": the best over
# all answers, as the official SQuAD v1.1 script scores (higher).
ANSWER_RULES = ("first", "best")


def gold_answers(answers: Union[str, Sequence[str]], rule: str) -> List[str]:
    answers = [answers] if isinstance(answers, str) else list(answers)
    if rule not in ANSWER_RULES:
        raise ValueError(f"answer rule {rule!r}: one of {', '.join(ANSWER_RULES)}")
    return answers[:1] if rule == "first" else answers


def example_scores(prediction: str, answers: Union[str, Iterable[str]]) -> Tuple[float, int]:
    """(F1 in 0..1, EM 0/1) of one prediction against its answer(s): the best over answers."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    if not answers:
        raise ValueError("an example needs at least one answer")
    prediction = first_line(prediction)
    return max(f1(prediction, a) for a in answers), max(exact(prediction, a) for a in answers)


def score(predictions: Sequence[str], answers: Sequence[Union[str, Sequence[str]]]) -> Dict[str, float]:
    """{"f1", "em"} in percent and "count" over paired predictions and answers."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answers")
    if not predictions:
        raise ValueError("nothing to score")
    total_f1 = 0.0
    total_em = 0
    for prediction, answer in zip(predictions, answers):
        example_f1, example_em = example_scores(prediction, answer)
        total_f1 += example_f1
        total_em += example_em
    n = len(predictions)
    return {"f1": 100.0 * total_f1 / n, "em": 100.0 * total_em / n, "count": n}


_PRED = "pred is:"
_LABEL = "label is:"


def pairs_from_log(path: Union[str, Path]) -> List[Tuple[str, str]]:
    """(prediction, label) pairs printed by MindFormers' EmF1Metric in an eval log.

    The metric prints `pred is:` and ` label is:` each followed by a line with a
    Python list literal; the prediction is already cut at its first newline.
    Used to re-score an eval run made by MindFormers itself (Ascend).
    """
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    pairs: List[Tuple[str, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == _PRED:
            if i + 3 >= len(lines) or lines[i + 2].strip() != _LABEL:
                raise ValueError(f"{path}:{i + 1}: `pred is:` not followed by a prediction and `label is:`")
            preds = ast.literal_eval(lines[i + 1].strip())
            labels = ast.literal_eval(lines[i + 3].strip())
            if len(preds) != len(labels):
                raise ValueError(f"{path}:{i + 1}: {len(preds)} predictions for {len(labels)} labels")
            pairs.extend(zip(preds, labels))
            i += 4
        else:
            i += 1
    return pairs
