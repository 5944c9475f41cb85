"""Data preparation building blocks, one job per module.

sources   fetch a data uri (local path, http(s), S3/OBS) and verify its sha256
loaders   parse contest JSON lines, alpaca JSON, MMLU/CMMLU CSV into rows; count bad rows
dedupe    drop repeated (problem, solution) pairs
classify  the 15 contest problem types, extensible by the spec
sample    per-type quotas with upsampling, per-type counts, random fraction
cot       chain of thought per type, with exact decimal arithmetic
templates alpaca, fastchat vicuna, multiple choice
tokenizer Llama 3 (tokenizer.json or tiktoken tokenizer.model) and sentencepiece
mindrecord MindFormers' qa rows (input_ids, labels) written in shards
seqlen    seq_length `auto`, token-length histogram, padding share
synth     a contest-scale synthetic train.json for benchmarks
"""
