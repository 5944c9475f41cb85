"""The shard writers' failure is reported as theirs, not as a broken pipe."""
import pytest

from mathtune_pipeline.data.workers import Workers


def test_a_dead_writer_is_named_not_a_broken_pipe():
    workers = Workers(writers=1, tokenizers=1)
    (proc, _conn), = workers._writers
    proc.kill()  # as when `import mindspore` fails in the writer (a missing libgomp, say)
    proc.join(10)
    with pytest.raises(RuntimeError, match=r"a shard writer process died \(exit code -9\)"):
        workers.write([("shard-0.mindrecord", [], 0, 0)])
