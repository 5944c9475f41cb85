"""`mathtune-pipeline prepare` end to end: the real rows, a contest-shaped file, remote
sources on loopback, bad input, and re-runs."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.cli import main
from mathtune_pipeline.data import types as T
from mathtune_pipeline.data.loaders import unwrap_prompt
from mathtune_pipeline.data.synth import write_synth

from .checks import true_type_from_solution
from .test_cot import check_row
from tests import stage_result
from tests.specs import whole


def run_prepare(tmp_path: Path, data: dict, run_dir: Path = None, extra_args=()):
    spec_path = tmp_path / "run.yaml"
    spec_path.write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                         "metadata": {"name": "t"},
                                         "spec": whole({"data": data, "storage": {"dataPath": str(tmp_path)}})}))
    run_dir = run_dir or tmp_path / "run"
    result_file = tmp_path / "result.json"
    code = main(["prepare", "--spec", str(spec_path), "--run-dir", str(run_dir),
                 "--result-file", str(result_file), *extra_args])
    return code, stage_result.check(json.loads(result_file.read_text())), run_dir


def rows_of(run_dir: Path):
    return [json.loads(line) for line in (run_dir / "prepare" / "train.jsonl").read_text(encoding="utf-8").splitlines()]


def test_real_rows_true_types_and_right_answers(tmp_path, contest_200_path, contest_200):
    truth = {}
    for row in contest_200:
        question = unwrap_prompt(row["problem"])
        truth[question] = true_type_from_solution(question, row["solution"])
    steps = sorted(set(T.CONTEST_TYPES) - {T.ENGLISH})
    code, result, run_dir = run_prepare(tmp_path, {
        "source": {"uri": str(contest_200_path), "format": "contest-jsonl"},
        "chainOfThought": {"enabled": True, "decimals": 2, "types": steps}})
    assert code == 0, result
    assert result["rows"]["read"] == 200 and result["rows"]["bad"] == 0 and result["rows"]["other"] == 0
    rows = rows_of(run_dir)
    assert len(rows) == result["rows"]["deduped"] == 200 - result["rows"]["duplicates"]
    for row in rows:
        question = unwrap_prompt(row["prompt"])
        assert row["type"] == truth[question], question
        check_row(row["type"], question, row["response"], 2)
    manifest = json.loads((run_dir / "prepare" / "manifest.json").read_text())
    assert manifest["counts"]["chainOfThought"]["failed"] == 0
    assert manifest["counts"]["unwrapped"] == 200
    assert manifest["source"]["sha256"] == hashlib.sha256(contest_200_path.read_bytes()).hexdigest()


SEED000_SCALED = {k: max(1, v // 50) for k, v in T.SEED000_QUOTAS.items()}


def test_seed000_recipe_on_a_contest_shaped_file(tmp_path):
    source = tmp_path / "train.json"
    write_synth(source, total=4000, seed=3)
    data = {"source": {"uri": "train.json", "format": "contest-jsonl"},   # relative: under storage.dataPath
            "sample": {"mode": "quota", "seed": 42, "quotas": SEED000_SCALED},
            "chainOfThought": {"enabled": True, "decimals": 2}}
    code, result, run_dir = run_prepare(tmp_path, data)
    assert code == 0, result
    r = result["rows"]
    assert r["read"] == 4000 and r["bad"] == 0 and r["other"] == 0
    assert r["deduped"] + r["duplicates"] == 4000 and r["duplicates"] > 1000   # synth repeats a third, like train.json
    assert set(r["classified"]) == set(T.CONTEST_TYPES)
    rows = rows_of(run_dir)
    assert len(rows) == r["sampled"] == sum(SEED000_SCALED.values())
    by_type = {}
    for row in rows:
        by_type[row["type"]] = by_type.get(row["type"], 0) + 1
        if row["type"] != T.ENGLISH:
            check_row(row["type"], unwrap_prompt(row["prompt"]), row["response"], 2)
    assert by_type == SEED000_SCALED
    manifest = json.loads((run_dir / "prepare" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["sampledByType"] == SEED000_SCALED and counts["classified"] == r["classified"]
    assert manifest["inputDigest"] and manifest["configDigest"]

    # Same input, same config: skipped. Another seed: redone, different rows.
    code, again, _ = run_prepare(tmp_path, data)
    assert code == 0 and again.get("skipped") is True and again["rows"] == r
    first = (run_dir / "prepare" / "train.jsonl").read_bytes()
    code, _, _ = run_prepare(tmp_path, {**data, "sample": {**data["sample"], "seed": 7}})
    assert code == 0 and (run_dir / "prepare" / "train.jsonl").read_bytes() != first
    # Changing only tokenize's settings does not redo prepare.
    code, again, _ = run_prepare(tmp_path, {**data, "sample": {**data["sample"], "seed": 7}, "seqLength": 1024})
    assert again.get("skipped") is True


def test_too_many_bad_rows_fails_permanently_and_keeps_the_last_output(tmp_path):
    good = [{"problem": f"计算 {i} + 1 等于多少？", "solution": f"{i} + 1 = {i + 1}"} for i in range(20)]
    source = tmp_path / "data.jsonl"
    source.write_text("\n".join(json.dumps(g, ensure_ascii=False) for g in good) + "\n")
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": str(source)}, "maxBadRows": 1})
    assert code == 0
    before = (run_dir / "prepare" / "train.jsonl").read_bytes()
    source.write_text(source.read_text() + "oops\n{\"problem\": 1}\n")
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": str(source)}, "maxBadRows": 1})
    assert code == 2 and result["ok"] is False
    assert "at most 1 bad rows" in result["error"] and "lines 21, 22" in result["error"]
    assert (run_dir / "prepare" / "train.jsonl").read_bytes() == before
    # -1 (the default): reported, never fatal.
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": str(source)}})
    assert code == 0 and result["rows"]["bad"] == 2


GOOD_ROWS = "".join(json.dumps({"problem": f"计算 {i} + 1 等于多少？", "solution": f"{i} + 1 = {i + 1}"},
                               ensure_ascii=False) + "\n" for i in range(20)).encode()


@pytest.mark.parametrize("content, fmt, sample, expected", [
    (b"not json\n" * 10, "contest-jsonl", None, "all 10 rows are bad"),
    (bytes(range(256)) * 10, "contest-jsonl", None, "rows are bad"),
    (b"", "contest-jsonl", None, "the file holds none"),
    (json.dumps([{"instruction": "q", "input": "", "output": "a"}]).encode(), "contest-jsonl", None, "rows are bad"),
    (b"{not json", "alpaca-json", None, "rows are bad"),
    (b"\x00\x01garbage", "mmlu-csv", None, "rows are bad"),
    (bytes(range(256)) * 10, "mmlu-csv", None, "a UTF-8 mmlu-csv file"),
    (bytes(range(256)) * 10, "alpaca-json", None, "a UTF-8 alpaca-json file"),
    (GOOD_ROWS, "contest-jsonl", {"mode": "fraction", "fraction": 0.01}, "spec.data.sample chose none of the 20"),
    (GOOD_ROWS, "contest-jsonl", {"mode": "quota", "quotas": {"add": 0}}, "spec.data.sample chose none of the 20"),
])
def test_a_dataset_empty_after_filtering_is_bad_input_and_keeps_the_last_output(tmp_path, content, fmt, sample,
                                                                                   expected):
    source = tmp_path / "data.jsonl"
    source.write_bytes(GOOD_ROWS)
    code, _, run_dir = run_prepare(tmp_path, {"source": {"uri": str(source)}})
    assert code == 0
    before = (run_dir / "prepare" / "train.jsonl").read_bytes()
    source.write_bytes(content)
    data = {"source": {"uri": str(source), "format": fmt}, **({"sample": sample} if sample else {})}
    code, result, _ = run_prepare(tmp_path, data)
    assert code == 2 and result["ok"] is False, result
    assert str(source) in result["error"] and expected in result["error"], result
    assert (run_dir / "prepare" / "train.jsonl").read_bytes() == before
    assert source.read_bytes() == content


@pytest.mark.parametrize("data, field", [
    ({"source": {"uri": "missing.json"}}, "spec.data.source.uri"),
    ({"source": {"uri": "x.json", "format": "xml"}}, "spec.data.source.format"),
    ({"source": {"uri": "ftp://host/x.json"}}, "spec.data.source.uri"),
    ({"source": {"uri": "x.json"}, "maxBadRows": -5}, "spec.data.maxBadRows"),
    ({"source": {"uri": "x.json"}, "chainOfThought": {"enabled": True, "types": ["cube"]}},
     "spec.data.chainOfThought.types"),
])
def test_bad_spec_exits_2_naming_the_field(tmp_path, data, field):
    (tmp_path / "x.json").write_text('{"problem": "q", "solution": "a"}\n')
    code, result, _ = run_prepare(tmp_path, data)
    assert code == 2 and result["error"].startswith(field + ":"), result


def test_http_source_with_sha256(tmp_path, http_root, contest_200_path):
    root, base = http_root
    body = contest_200_path.read_bytes()
    (root / "data.jsonl").write_bytes(body)
    good = hashlib.sha256(body).hexdigest()
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": f"{base}/data.jsonl", "sha256": good}})
    assert code == 0 and result["rows"]["read"] == 200
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": f"{base}/data.jsonl", "sha256": "0" * 64}})
    assert code == 2 and result["error"].startswith("spec.data.source.sha256:") and good in result["error"]
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": f"{base}/absent.jsonl"}})
    assert code == 2 and "HTTP 404" in result["error"]


def test_alpaca_and_mmlu_sources_with_their_templates(tmp_path):
    belle = tmp_path / "school_math.json"
    belle.write_text("\n".join(json.dumps({"instruction": f"题目：小明有{i}个苹果，又买了2个，现在有几个？", "input": "",
                                           "output": f"{i} + 2 = {i + 2}，所以现在有{i + 2}个。"}, ensure_ascii=False)
                               for i in range(30)) + "\n", encoding="utf-8")
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": str(belle), "format": "alpaca-json"},
                                                   "template": {"name": "vicuna"}})
    assert code == 0 and result["rows"]["sampled"] == 30 and result["rows"]["classified"] == {"other": 30}
    row = rows_of(run_dir)[0]
    assert row["prompt"].endswith(" ASSISTANT:") and " USER: 题目：" in row["prompt"] and row["response"].startswith(" ")
    mmlu = tmp_path / "mmlu.csv"
    mmlu.write_text('"What is 2+2?",3,4,5,6,B\n"What is 3+3?",6,7,8,9,A\n')
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": str(mmlu), "format": "mmlu-csv"},
                                                   "template": {"name": "multiple-choice"}}, tmp_path / "run2")
    assert code == 0 and result["rows"]["classified"] == {"choice": 2}
    assert {r["response"] for r in rows_of(run_dir)} == {"A", "B"}


@pytest.fixture
def s3_server(monkeypatch):
    """A real S3-compatible server (moto's) on loopback; credentials only in the environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("S3_ENDPOINT", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    server.stop()


def test_s3_source(tmp_path, s3_server, contest_200_path, monkeypatch):
    from mathtune_pipeline.data.sources import s3_client

    client = s3_client()
    client.create_bucket(Bucket="contest")
    client.put_object(Bucket="contest", Key="v1/train.json", Body=contest_200_path.read_bytes())
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": "s3://contest/v1/train.json"}})
    assert code == 0 and result["rows"]["read"] == 200
    assert (run_dir / "downloads" / "train.json").read_bytes() == contest_200_path.read_bytes()
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": "s3://contest/v1/absent.json"}})
    assert code == 2 and result["error"].startswith("spec.data.source.uri:"), result
    # Without credentials: a permanent error naming what is missing. In a fresh
    # process: moto, imported here, registers its own botocore hooks.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", S3_ENDPOINT=os.environ["S3_ENDPOINT"])
    spec = tmp_path / "run-s3.yaml"
    spec.write_text(yaml.safe_dump(whole({"data": {"source": {"uri": "s3://contest/v1/train.json"}}})))
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "prepare", "--spec", str(spec),
                           "--run-dir", str(tmp_path / "run3"), "--result-file", str(tmp_path / "r3.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    result = json.loads((tmp_path / "r3.json").read_text())
    assert proc.returncode == 2 and "AWS_ACCESS_KEY_ID" in result["error"], (proc.stderr, result)


def test_a_directory_source_reads_every_file_of_its_format(tmp_path):
    source = tmp_path / "mmlu"
    source.mkdir()
    (source / "astronomy.csv").write_text('"What is 2+2?",3,4,5,6,B\n', encoding="utf-8")
    (source / "cmmlu_math.csv").write_text(",Question,A,B,C,D,Answer\n0,1+1=?,1,2,3,4,B\n", encoding="utf-8")
    code, result, run_dir = run_prepare(tmp_path, {"source": {"uri": str(source), "format": "mmlu-csv"},
                                                   "dedupe": False, "template": {"name": "multiple-choice"}})
    assert code == 0, result
    assert result["rows"]["read"] == 2 and len(rows_of(run_dir)) == 2


def test_an_empty_directory_source_is_bad_input_naming_the_uri(tmp_path):
    (tmp_path / "empty").mkdir()
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": str(tmp_path / "empty"), "format": "mmlu-csv"}})
    assert code == 2 and result["error"].startswith("spec.data.source.uri:") and "*.csv" in result["error"], result


def test_a_sha256_on_a_directory_source_is_bad_input(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text('"Q",1,2,3,4,A\n')
    code, result, _ = run_prepare(tmp_path, {"source": {"uri": str(tmp_path / "d"), "format": "mmlu-csv",
                                                        "sha256": "0" * 64}})
    assert code == 2 and result["error"].startswith("spec.data.source.sha256:"), result


def test_the_result_says_what_the_later_stages_will_need_of_the_volume(tmp_path, contest_200_path):
    """Llama3-8B's defaults, worked by hand: P = 8,030,261,248 parameters (Meta's published count) in
    bfloat16, LoRA rank 8 on wq (4096 -> 4096) and wv (4096 -> 1024) in 32 layers = 8 x (8192 + 5120)
    x 32 = 3,407,872 trainable, 1 epoch kept, 4 data-parallel ranks, 200 rows of 513 int32 ids x 2
    columns. The free bytes are the volume's (here: tmp's)."""
    import shutil

    from mathtune_pipeline import disk

    code, result, _ = run_prepare(tmp_path, {"source": {"uri": str(contest_200_path), "format": "contest-jsonl"}})
    assert code == 0, result
    model, lora = 8_030_261_248 * 2, 3_407_872
    tokenize = 200 * 513 * 4 * 2
    train = 4 * model + 4 * (3 * lora * 4)           # dataParallel copies; each rank's LoRA + 2 Adam moments
    merge = model + lora * 4                          # the merged model and the float32 adapter
    assert result["disk"]["neededBytes"] == tokenize + train + merge == 80_480_642_624
    assert abs(result["disk"]["freeBytes"] - shutil.disk_usage(tmp_path).free) < disk.GIB
