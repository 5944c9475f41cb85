"""Loaders: three formats, bad rows counted with line numbers, never fatal by themselves."""
import json

import pytest

from mathtune_pipeline.data.dedupe import dedupe
from mathtune_pipeline.data.loaders import load
from mathtune_pipeline.errors import SpecError


def jl(*objs) -> bytes:
    return "\n".join(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs).encode() + b"\n"


def test_contest_bad_rows_are_counted_with_line_numbers():
    data = jl({"problem": "计算 1 + 2 等于多少？", "solution": "1 + 2 = 3"},
              "{not json",
              {"problem": "计算 1 + 2 等于多少？", "solution": "1 + 2 = 3"},
              ["a list"],
              "",
              {"problem": "", "solution": "x"},
              {"problem": "q", "solution": 5},
              "{not json",
              {"problem": "解方程 2x + 4 = 0", "solution": "方程的解为：-2"})
    rows = load(data, "contest-jsonl")
    assert rows.read == 8  # the blank line is not a row
    assert rows.bad == 5
    assert [n for n, _ in rows.bad_examples] == [2, 4, 6, 7, 8]
    assert "not JSON" in rows.bad_examples[0][1]
    assert rows.instruction == ["计算 1 + 2 等于多少？", "解方程 2x + 4 = 0"]
    assert rows.repeats_dropped == 1
    assert rows.read == len(rows) + rows.bad + rows.repeats_dropped


def test_contest_pairs_that_differ_only_in_formatting_are_duplicates():
    data = (b'{"problem": "p", "solution": "s"}\n{"solution":"s","problem":"p"}\r\n'
            b'{"problem": "p", "solution": "t"}\n')
    rows = load(data, "contest-jsonl")
    assert len(rows) == 3 and rows.repeats_dropped == 0
    assert dedupe(rows) == 1
    assert rows.output == ["s", "t"]


def test_keep_repeats_when_dedupe_is_off():
    rows = load(jl({"problem": "p", "solution": "s"}, {"problem": "p", "solution": "s"}), "contest-jsonl",
                drop_repeats=False)
    assert len(rows) == 2 and rows.repeats_dropped == 0


def test_questions_already_wrapped_in_a_prompt_are_unwrapped(contest_200_path):
    rows = load(contest_200_path.read_bytes(), "contest-jsonl")
    assert rows.read == 200 and rows.bad == 0 and rows.unwrapped == len(rows)
    assert all("###" not in q and "Below is" not in q for q in rows.instruction)
    assert rows.instruction[0] == "计算 -7451.51 - -1709.92 等于多少？"


def test_alpaca_as_array_and_as_json_lines():
    items = [{"instruction": "题目：1+1=?", "input": "", "output": "2"},
             {"instruction": "翻译", "input": "hello", "output": "你好"},
             {"instruction": "", "output": "x"},
             "not an object"]
    as_array = load(json.dumps(items, ensure_ascii=False).encode(), "alpaca-json")
    as_lines = load(jl(*items[:3]) + b"{broken\n", "alpaca-json")
    assert as_array.instruction == as_lines.instruction == ["题目：1+1=?", "翻译"]
    assert as_array.input == ["", "hello"]
    assert [n for n, _ in as_array.bad_examples] == [3, 4]
    assert [n for n, _ in as_lines.bad_examples] == [3, 4]
    with pytest.raises(SpecError):
        load(b"[{broken", "alpaca-json")


def test_mmlu_without_header_and_cmmlu_with_header():
    mmlu = b'"What is 2+2?",3,4,5,6,B\nBroken row,1,2\n"Q2","a","b","c","d",E\n'
    rows = load(mmlu, "mmlu-csv")
    assert rows.instruction == ["What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6"]
    assert rows.output == ["B"]
    assert rows.bad == 2 and [n for n, _ in rows.bad_examples] == [2, 3]
    cmmlu = ",Question,A,B,C,D,Answer\n0,中国的首都是？,上海,北京,广州,深圳,B\n".encode()
    rows = load(cmmlu, "mmlu-csv")
    assert rows.instruction == ["中国的首都是？\nA. 上海\nB. 北京\nC. 广州\nD. 深圳"] and rows.output == ["B"]


def test_unknown_format_names_the_field():
    with pytest.raises(SpecError) as err:
        load(b"", "parquet")
    assert err.value.field == "spec.data.source.format"


def test_a_directory_of_mmlu_csvs_yields_the_rows_of_every_file_in_name_order(tmp_path):
    from mathtune_pipeline.data.loaders import load_files, source_files

    (tmp_path / "b_cmmlu.csv").write_text(",Question,A,B,C,D,Answer\n0,中国的首都是？,上海,北京,广州,深圳,B\n",
                                          encoding="utf-8")
    (tmp_path / "a_mmlu.csv").write_text('"What is 2+2?",3,4,5,6,B\n"Q2","a","b","c","d",E\n', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not data")
    files = source_files(tmp_path, "mmlu-csv", "spec.data.source.uri")
    assert [f.name for f in files] == ["a_mmlu.csv", "b_cmmlu.csv"]
    rows = load_files(files, "mmlu-csv")
    assert rows.output == ["B", "B"] and rows.read == 3 and rows.bad == 1
    assert rows.instruction[0].startswith("What is 2+2?") and rows.instruction[1].startswith("中国的首都是？")
    assert "a_mmlu.csv" in rows.bad_examples[0][1]  # a bad row names its file


def test_a_directory_without_a_file_of_the_format_is_bad_input(tmp_path):
    from mathtune_pipeline.data.loaders import source_files

    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(SpecError) as err:
        source_files(tmp_path, "mmlu-csv", "spec.data.source.uri")
    assert err.value.field == "spec.data.source.uri" and "*.csv" in str(err.value)
