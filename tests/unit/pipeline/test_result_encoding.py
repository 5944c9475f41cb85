"""A stage's result always reaches the operator as valid JSON within the termination
message's room, and a long error keeps what a person needs: its head (what failed)
and its tail (the end of the traceback)."""
import json

import pytest

from mathtune_pipeline.result import MAX_RESULT_BYTES, encode_result


@pytest.mark.parametrize("kib", [3, 5, 50])
@pytest.mark.parametrize("unit", ["x", "显存不足，", 'a"\\\n'], ids=["ascii", "chinese", "escapes"])
def test_a_long_error_stays_valid_json_with_its_head_and_tail(kib, unit):
    body = unit * (kib * 1024 // len(unit.encode()))
    error = "spec.training.batchSize: FIRST " + body + " LAST line of the traceback"
    result = {"stage": "train", "ok": False, "error": error, "log": "y" * 2000, "counts": {"rows": 1}}
    text = encode_result(result)
    assert len(text.encode()) <= MAX_RESULT_BYTES
    got = json.loads(text)                                # valid JSON, whatever was cut
    assert got["stage"] == "train" and got["ok"] is False
    assert got["truncated"] == ["log", "counts"]
    assert got["error"].startswith("spec.training.batchSize: FIRST")
    assert got["error"].endswith("LAST line of the traceback")
    head, _, rest = got["error"].partition(" [... ")
    cut, _, tail = rest.partition(" bytes cut ...] ")
    # The marker says how much is gone, and nothing else is.
    assert len(head.encode()) + int(cut) + len(tail.encode()) == len(error.encode())
    # Most of the room is used: a cut error is not shortened more than it must be.
    assert len(text.encode()) > MAX_RESULT_BYTES - 64


def test_a_result_that_fits_is_left_whole():
    result = {"stage": "prepare", "ok": True, "rows": {"read": 3}}
    assert json.loads(encode_result(result)) == result


def test_large_members_go_before_the_error_is_cut():
    result = {"stage": "evaluate", "ok": False, "error": "short reason", "pairs": ["p"] * 2000}
    got = json.loads(encode_result(result))
    assert got == {"stage": "evaluate", "ok": False, "error": "short reason", "truncated": ["pairs"]}
