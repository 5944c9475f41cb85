"""Export memory: peak RSS of writing a Llama3-8B-shaped model as Hugging Face
safetensors shards, streamed (the export stage's writer) against holding the
whole state dict (what transformers' save_pretrained does with a loaded model).

Inputs are MindSpore checkpoints of random bfloat16 weights in MindFormers'
naming, written here a tensor at a time (checkpoint_io.Writer) and deleted
after: the full Llama3-8B shape (32 layers, hidden 4096, 8 KV heads, FFN
14336, vocabulary 128256: 16.1 GB) and, for the baseline, the same shape cut
to 4 layers (3.8 GB: the whole model in memory twice over would not fit this
machine's 23 GiB at full size). Each path runs in its own process; its figure
is its peak RSS (wait4) less the same command's on a one-layer tiny model,
measured in the same run.

Goals: on the full shape, the streamed export's extra memory is at most 1.2x
its largest shard (5 GB shards, Hugging Face's default size); on the cut
shape, at most a tenth of the baseline's.
"""
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.common import CACHE, REPO, Goals, env_with_pipeline, machine, measure  # noqa: E402

LLAMA3_8B = dict(layers=32, hidden=4096, kv=1024, ffn=14336, vocab=128256)
CUT = dict(LLAMA3_8B, layers=4)
TINY = dict(layers=1, hidden=64, kv=64, ffn=128, vocab=128)
SHARD = 5 * 10**9
NEED_FREE = 36 * 10**9  # the 8B input and its export, 16.1 GB each, at once

WRITE = """
import sys, numpy as np
from mathtune_pipeline.mindformers import checkpoint_io
layers, hidden, kv, ffn, vocab = map(int, sys.argv[2:7])
rng = np.random.default_rng(0)
def tensor(out, name, *shape):
    n = int(np.prod(shape)) * 2
    out.add(name, shape, "BFloat16", rng.bytes(n))
with checkpoint_io.Writer(sys.argv[1]) as out:
    tensor(out, "model.tok_embeddings.embedding_weight", vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        for m, rows in (("wq", hidden), ("wk", kv), ("wv", kv), ("wo", hidden)):
            tensor(out, p + f"attention.{m}.weight", rows, hidden)
        tensor(out, p + "feed_forward.w1.weight", ffn, hidden)
        tensor(out, p + "feed_forward.w2.weight", hidden, ffn)
        tensor(out, p + "feed_forward.w3.weight", ffn, hidden)
        tensor(out, p + "attention_norm.weight", hidden)
        tensor(out, p + "ffn_norm.weight", hidden)
    tensor(out, "model.norm_out.weight", hidden)
    tensor(out, "lm_head.weight", vocab, hidden)
"""

STREAMED = """
import sys
from pathlib import Path
from mathtune_pipeline.export import names, safetensors_out
entries = safetensors_out.entries(Path(sys.argv[1]), lambda n: names.hf_name("llama3-8b", n))
written = safetensors_out.write_sharded(entries, Path(sys.argv[2]), int(sys.argv[3]), {"format": "pt"})
print(max(w.bytes for w in written))
"""


def checkpoint(path: Path, shape: dict) -> Path:
    args = [str(shape[k]) for k in ("layers", "hidden", "kv", "ffn", "vocab")]
    measure([sys.executable, "-c", WRITE, str(path), *args], env_with_pipeline())
    return path


def streamed(src: Path, out: Path) -> dict:
    run = measure([sys.executable, "-c", STREAMED, str(src), str(out), str(SHARD)], env_with_pipeline())
    run["largest_shard"] = int(run["stdout"].split()[-1])
    return run


def whole(src: Path, out: Path) -> dict:
    return measure([sys.executable, str(REPO / "tests" / "bench" / "baseline_export_whole.py"), str(src), str(out),
                    str(SHARD)], env_with_pipeline())


def _digest(f, ranges) -> str:
    h = hashlib.sha256()
    for offset, size in ranges:
        f.seek(offset)
        for done in range(0, size, 1 << 26):
            h.update(f.read(min(1 << 26, size - done)))
    return h.hexdigest()


def same_bytes(src: Path, out: Path) -> bool:
    """Every tensor of the export holds its checkpoint tensor's bytes, dtype and shape (both files read back)."""
    sys.path.insert(0, str(REPO / "pipeline"))
    from mathtune_pipeline.export import names
    from mathtune_pipeline.mindformers import checkpoint_io, weights

    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    heads = {shard: weights.read_header(out / shard) for shard in set(index.values())}
    with open(src, "rb") as ckpt:
        for name, dims, _, parts in checkpoint_io.grouped(src):
            hf = names.hf_name("llama3-8b", name)
            start, header = heads[index[hf]]
            begin, end = header[hf]["data_offsets"]
            if (header[hf]["dtype"], header[hf]["shape"]) != ("BF16", list(dims)):
                return False
            with open(out / index[hf], "rb") as f:
                if _digest(ckpt, [(p.offset, p.size) for p in parts]) != _digest(f, [(start + begin, end - begin)]):
                    return False
    return len(index) == sum(len(h) for _, h in heads.values())


def main() -> int:
    goals = Goals("bench_export")
    print(f"# {machine()}")
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < NEED_FREE:
        print(f"bench_export: needs {NEED_FREE / 1e9:.0f} GB free under {CACHE} (has {free / 1e9:.0f} GB)",
              file=sys.stderr)
        return 1
    rss = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=CACHE) as tmp:
        tmp = Path(tmp)
        tiny = checkpoint(tmp / "tiny.ckpt", TINY)
        rss["streamed-tiny"] = streamed(tiny, tmp / "tiny-streamed")["rss_mib"]
        rss["whole-tiny"] = whole(tiny, tmp / "tiny-whole")["rss_mib"]

        cut = checkpoint(tmp / "cut.ckpt", CUT)
        cut_size = cut.stat().st_size
        rss["streamed-cut"] = streamed(cut, tmp / "cut-streamed")["rss_mib"]
        rss["whole-cut"] = whole(cut, tmp / "cut-whole")["rss_mib"]
        shutil.rmtree(tmp / "cut-streamed")
        shutil.rmtree(tmp / "cut-whole")
        cut.unlink()

        full = checkpoint(tmp / "llama3-8b.ckpt", LLAMA3_8B)
        full_size = full.stat().st_size
        run = streamed(full, tmp / "full-streamed")
        rss["streamed-full"], largest = run["rss_mib"], run["largest_shard"]
        seconds = run["seconds"]
        identical = same_bytes(full, tmp / "full-streamed")

    extra = {k: rss[k] - rss[k.split("-")[0] + "-tiny"] for k in ("streamed-cut", "whole-cut", "streamed-full")}
    print("command (streamed): python -c <export.safetensors_out.write_sharded of the checkpoint, 5 GB shards>")
    print("command (baseline): python tests/bench/baseline_export_whole.py <ckpt> <out> 5000000000")
    print(f"Llama3-8B shape, bfloat16: {full_size / 1e9:.1f} GB checkpoint, largest shard {largest / 1e9:.2f} GB, "
          f"written in {seconds:.0f} s ({full_size / seconds / 1e6:.0f} MB/s); tensors byte-identical: "
          f"{'yes' if identical else 'NO'}")
    print(f"  streamed: peak RSS {rss['streamed-full']:.0f} MiB, {extra['streamed-full']:.0f} MiB above the tiny "
          f"model's = {extra['streamed-full'] * 2**20 / largest:.3f}x the largest shard")
    print(f"cut to {CUT['layers']} layers: {cut_size / 1e9:.1f} GB")
    for path in ("streamed", "whole"):
        print(f"  {path:<8} peak RSS {rss[path + '-cut']:.0f} MiB, {extra[path + '-cut']:.0f} MiB above the tiny "
              f"model's = {extra[path + '-cut'] * 2**20 / cut_size:.2f}x the checkpoint")
    ratio = extra["streamed-cut"] / extra["whole-cut"]
    print(f"streamed export holds {ratio:.3f}x the baseline's extra memory")
    print(goals.check("8B shape: extra peak RSS <= 1.2x the largest shard",
                      extra["streamed-full"] * 2**20 <= 1.2 * largest))
    print(goals.check("cut shape: extra peak RSS <= 0.1x the whole-state-dict baseline's", ratio <= 0.1))
    print(goals.check("every exported tensor byte-identical to its checkpoint tensor", identical))
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
