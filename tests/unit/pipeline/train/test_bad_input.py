"""Bad input is a spec/input error (exit 2, never retried) that names the file,
and nothing an earlier stage produced is touched."""
import json

import pytest

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import records

from tests import stage_result

from .conftest import run_stage, write_mindrecord, write_spec

pytestmark = pytest.mark.mindspore


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_mindrecord_is_bad_input_naming_the_file(tmp_path, damage):
    shard = write_mindrecord(tmp_path / "run" / "tokenize")
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"not a mindrecord" * 64)
    kept = shard.read_bytes()
    with pytest.raises(SpecError) as err:
        records.count_rows(records.shards(shard.parent))
    assert str(shard) in err.value.field

    proc = run_stage("train", write_spec(tmp_path / "run.yaml"), tmp_path / "run")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert result["ok"] is False and str(shard) in result["error"] and "MindRecord" in result["error"]
    assert shard.read_bytes() == kept  # tokenize's output is left as it was
