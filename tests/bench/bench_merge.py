"""Merge memory: peak RSS of folding LoRA into a >= 1 GB checkpoint, whole-file
(the baseline) against streamed (the merge stage).

A synthetic training checkpoint shaped like MindFormers' Llama with LoRA on
wq, wv and its Adam state (tests/synthetic_ckpt.py: 24 layers, hidden 1024,
vocabulary 32000, float32 by default or BENCH_MERGE_DTYPE=bfloat16), written
once by MindSpore's save_checkpoint and cached. Each path runs in its own
process; the figure is its peak RSS (wait4) less the peak RSS of the same
command on a one-layer checkpoint (the interpreter, MindSpore, the code),
measured in the same run, against the checkpoint's size. The merged files of
both paths are compared tensor by tensor.
"""
import os
import shutil
import sys
import tempfile
from itertools import zip_longest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.common import CACHE, PIPELINE, REPO, env_with_pipeline, machine, measure  # noqa: E402

DTYPE = os.environ.get("BENCH_MERGE_DTYPE", "float32")
SHAPES = {"big": dict(layers=24, hidden=1024, vocab=32000), "tiny": dict(layers=1, hidden=64, vocab=128)}
SPEC = """apiVersion: mathtune.dev/v1alpha1
kind: MathFinetune
metadata: {name: bench-merge}
spec:
  profile: cpu
  model: {family: tiny-llama, tiny: {numLayers: 2, hiddenSize: 64, numHeads: 4, vocabSize: 512}}
  data: {source: {uri: train.jsonl}, seqLength: 32}
  lora: {rank: 8, alpha: 16, targetModules: [wq, wv]}
  evaluation: {}
  prediction: {}
"""


def checkpoint(kind: str) -> Path:
    """The cached synthetic checkpoint, written by a child process (its own memory)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    shape = SHAPES[kind]
    path = CACHE / f"merge-{kind}-{shape['layers']}x{shape['hidden']}x{shape['vocab']}-{DTYPE}.ckpt"
    if not path.exists():
        tmp = path.with_name(".tmp-" + path.name)
        code = (f"from pathlib import Path; from tests import synthetic_ckpt; "
                f"synthetic_ckpt.write(Path({str(tmp)!r}), dtype={DTYPE!r}, **{shape!r})")
        measure([sys.executable, "-c", code], {**env_with_pipeline(), "PYTHONPATH": f"{REPO}:{REPO / 'pipeline'}"})
        tmp.replace(path)
    return path


def main() -> int:
    import numpy as np

    env = env_with_pipeline()
    print(f"# {machine()}")
    sizes, rss, commands = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        tmp = Path(tmp)
        (tmp / "spec.yaml").write_text(SPEC)
        sys.path.insert(0, str(REPO))
        from tests import synthetic_ckpt

        for kind in SHAPES:
            src = checkpoint(kind)
            sizes[kind] = src.stat().st_size
            run_dir = tmp / kind
            link = run_dir / "src.ckpt"
            link.parent.mkdir(parents=True)
            os.symlink(src, link)
            synthetic_ckpt.finished_train_stage(run_dir, link)
            commands[("whole", kind)] = [sys.executable, str(REPO / "tests" / "bench" / "baseline_merge_whole.py"),
                                         str(src), str(run_dir / "whole"), "2.0"]
            commands[("streamed", kind)] = PIPELINE + ["merge", "--spec", str(tmp / "spec.yaml"),
                                                       "--run-dir", str(run_dir)]
            for path in ("whole", "streamed"):
                rss[(path, kind)] = measure(commands[(path, kind)], env)["rss_mib"]
        from mathtune_pipeline.mindformers import checkpoint_io

        whole = checkpoint_io.tensors(tmp / "big" / "whole" / "merged.ckpt")
        streamed = checkpoint_io.tensors(tmp / "big" / "merge" / "epoch_1" / "merged.ckpt")
        same = all(a is not None and b is not None and a.name == b.name and a.dtype == b.dtype
                   and np.array_equal(a.array(), b.array()) for a, b in zip_longest(whole, streamed))
        shutil.rmtree(tmp / "big", ignore_errors=True)
    size_mib = sizes["big"] / 2**20
    print(f"command (streamed): {' '.join(commands[('streamed', 'big')])}")
    print(f"command (baseline): {' '.join(commands[('whole', 'big')])}")
    print(f"checkpoint: {size_mib:.0f} MiB ({DTYPE} weights, float32 LoRA and Adam state)")
    extra = {}
    for path in ("whole", "streamed"):
        extra[path] = rss[(path, "big")] - rss[(path, "tiny")]
        print(f"  {path:<9} peak RSS {rss[(path, 'big')]:7.0f} MiB, {extra[path]:7.0f} MiB above the same command "
              f"on a tiny checkpoint = {extra[path] / size_mib:.2f}x the checkpoint")
    print(f"streamed merge holds {extra['streamed'] / extra['whole']:.3f}x the baseline's extra memory; "
          f"merged weights identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
