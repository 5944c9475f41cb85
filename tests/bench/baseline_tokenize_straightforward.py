"""The straightforward baseline for bench_tokenize: one process, the `tokenizers`
library on tokenizer.json row by row, rows padded in Python, written with
MindSpore's FileWriter in batches of 1,000 (MindFormers' own llama_preprocess
writes one row per call, which is slower still).

usage: baseline_tokenize_straightforward.py PREPARED_JSONL TOKENIZER_JSON OUT_MINDRECORD SEQ_LENGTH
Prints one line: `rows=<n> seconds=<s>`.
"""
import json
import sys
import time

import numpy as np
from mindspore.mindrecord import FileWriter
from tokenizers import Tokenizer


def main(src, tokenizer_json, out, seq_length):
    start = time.perf_counter()
    tok = Tokenizer.from_file(tokenizer_json)
    bos, eos, pad = 128000, 128001, 128002
    writer = FileWriter(out, shard_num=1, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]}}, "qa")
    batch, n = [], 0
    with open(src, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            prompt = tok.encode(row["prompt"], add_special_tokens=False).ids
            response = tok.encode(row["response"], add_special_tokens=False).ids
            ids = ([bos] + prompt + response + [eos])[:seq_length + 1]
            labels = ([-100] * (1 + len(prompt)) + response + [eos])[:seq_length + 1]
            ids += [pad] * (seq_length + 1 - len(ids))
            labels += [-100] * (seq_length + 1 - len(labels))
            batch.append({"input_ids": np.array(ids, dtype=np.int32), "labels": np.array(labels, dtype=np.int32)})
            n += 1
            if len(batch) == 1000:
                writer.write_raw_data(batch)
                batch = []
    if batch:
        writer.write_raw_data(batch)
    writer.commit()
    print(f"rows={n} seconds={time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
