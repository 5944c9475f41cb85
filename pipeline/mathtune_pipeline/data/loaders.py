"""Parse a source file into rows: contest JSON lines, alpaca JSON, MMLU/CMMLU CSV.

Every format becomes the same three columns, alpaca's: instruction (the
question), input (extra context, often empty) and output (the answer). Bad
rows are counted with their line numbers (the first few) and skipped; they
never stop the load, `prepare` decides against `spec.data.maxBadRows`.

The contest loader is the hot path (810k rows): it drops byte-identical lines
before parsing (a third of train.json repeats), parses the rest a chunk at a
time with one `json.loads` per chunk, and only re-reads a chunk line by line
when that chunk holds a bad row. Byte-level dedupe loses nothing: identical
lines are identical (problem, solution) pairs, and `dedupe` still drops pairs
that differ only in formatting.
"""
import csv
import io
import json

import orjson
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import SpecError

FORMATS = ("contest-jsonl", "alpaca-json", "mmlu-csv")
# The files of a format a directory source is read from (spec.data.source.uri naming a directory).
SUFFIXES = {"contest-jsonl": (".jsonl", ".json"), "alpaca-json": (".json", ".jsonl"), "mmlu-csv": (".csv",)}
MAX_REPORTED_BAD = 10
_CHUNK = 20000

# Rows of the contest's test distribution arrive already wrapped in an alpaca
# prompt (shared fixture data_200_random.jsonl); the question is what is inside.
_WRAP_START = "### Instruction:\n"
_WRAP_END = "\n\n### Response:"


@dataclass
class Rows:
    instruction: List[str] = field(default_factory=list)
    input: List[str] = field(default_factory=list)
    output: List[str] = field(default_factory=list)
    read: int = 0                       # data rows seen (blank lines excluded)
    repeats_dropped: int = 0            # byte-identical repeats dropped while loading
    bad: int = 0
    bad_examples: List[Tuple[int, str]] = field(default_factory=list)   # (1-based line or item, why)
    unwrapped: int = 0                  # questions taken out of an existing prompt template

    def __len__(self) -> int:
        return len(self.instruction)

    def add_bad(self, where: int, why: str, times: int = 1) -> None:
        self.bad += times
        if len(self.bad_examples) < MAX_REPORTED_BAD:
            self.bad_examples.append((where, why))


def unwrap_prompt(text: str) -> Optional[str]:
    """The instruction inside an alpaca-style prompt, or None when `text` is a bare question."""
    start = text.find(_WRAP_START)
    if start < 0:
        return None
    end = text.find(_WRAP_END, start)
    inner = text[start + len(_WRAP_START): end if end >= 0 else len(text)]
    # `### Input:` inside: keep only the instruction part.
    cut = inner.find("\n\n### Input:")
    return (inner[:cut] if cut >= 0 else inner).strip()


def _unwrap_all(rows: Rows) -> None:
    for i, q in enumerate(rows.instruction):
        if _WRAP_START in q:
            inner = unwrap_prompt(q)
            if inner:
                rows.instruction[i] = inner
                rows.unwrapped += 1


# -- contest JSON lines ------------------------------------------------------

def _contest_row(line: bytes) -> Tuple[Optional[Tuple[str, str]], str]:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON ({exc.args[0].split(':')[0]})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    p, s = obj.get("problem"), obj.get("solution")
    if not isinstance(p, str) or not p.strip():
        return None, "no `problem` string"
    if not isinstance(s, str) or not s.strip():
        return None, "no `solution` string"
    return (p, s), ""


def _parse_chunk(chunk: List[bytes]) -> Optional[Tuple[List[str], List[str]]]:
    """Both columns of a chunk with no bad row, else None.

    orjson parses ~2x faster than `json`; where the two could disagree (invalid
    UTF-8, lone surrogates, NaN, huge integers) orjson refuses the chunk and
    the caller re-reads it line by line with `json`, so results are `json`'s."""
    try:
        objs = orjson.loads(b"[" + b",".join(chunk) + b"]")
        problems = [o["problem"] for o in objs]
        solutions = [o["solution"] for o in objs]
    except (ValueError, TypeError, KeyError, IndexError):   # orjson.JSONDecodeError is a ValueError
        return None
    if set(map(type, problems)) != {str} or set(map(type, solutions)) != {str}:
        return None
    if "" in problems or "" in solutions:
        return None
    return problems, solutions


@dataclass
class Lines:
    """A contest file split into lines, byte-identical repeats dropped (first kept)."""
    all: List[bytes]        # every line, for line numbers of bad rows
    unique: List[bytes]     # non-blank lines to parse, in first-occurrence order
    read: int               # non-blank lines
    wrapped: bool           # some row holds an alpaca prompt around its question


def split_lines(data: bytes, drop_repeats: bool = True) -> Lines:
    wrapped = b"### Instruction:" in data
    # A one-byte search is memchr (~10x faster than searching for two bytes on 130 MB);
    # most files have no CR at all.
    crlf = b"\r" in data and b"\r\n" in data
    lines = (data.replace(b"\r\n", b"\n") if crlf else data).split(b"\n")
    # dict, not set: first-occurrence order keeps every later step reproducible
    # (the order of a set of bytes changes with PYTHONHASHSEED).
    unique = list(dict.fromkeys(lines)) if drop_repeats else list(lines)
    if drop_repeats:
        blank = [ln for ln in unique if not ln.strip()]
        for junk in blank:
            unique.remove(junk)
        read = len(lines) - sum(lines.count(junk) for junk in blank)
    else:
        unique = [ln for ln in unique if ln.strip()]
        read = len(unique)
    return Lines(lines, unique, read, wrapped)


def bad_line_numbers(lines: Lines, bad: Dict[bytes, str], rows: "Rows") -> None:
    """Count every occurrence of each bad line and note where the first few are."""
    for number, line in enumerate(lines.all, 1):
        why = bad.get(line)
        if why is not None:
            rows.add_bad(number, why)


def load_contest_jsonl(data: bytes, drop_repeats: bool = True) -> Rows:
    lines = split_lines(data, drop_repeats)
    del data
    rows = Rows(read=lines.read)
    unique = lines.unique
    bad_lines: Dict[bytes, str] = {}
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start:start + _CHUNK]
        parsed = _parse_chunk(chunk)
        if parsed is not None:
            rows.instruction.extend(parsed[0])
            rows.output.extend(parsed[1])
            continue
        for line in chunk:
            pair, why = _contest_row(line)
            if pair is None:
                bad_lines[line] = why
            else:
                rows.instruction.append(pair[0])
                rows.output.append(pair[1])
    rows.input = [""] * len(rows.instruction)
    if bad_lines:
        # One pass for exact counts and line numbers; only paid when bad rows exist.
        bad_line_numbers(lines, bad_lines, rows)
    rows.repeats_dropped = rows.read - len(rows.instruction) - rows.bad
    if lines.wrapped:
        _unwrap_all(rows)
    return rows


# -- alpaca JSON (array, or JSON lines as BELLE ships it) ----------------------

class _NotJson:
    pass


def _alpaca_items(data: bytes) -> List[Tuple[int, Any]]:
    """(item or line number, parsed object or _NotJson) in file order."""
    text = data.decode("utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise SpecError("spec.data.source", f"alpaca JSON: a JSON array or JSON lines ({exc})") from exc
        return list(enumerate(items, 1))
    out: List[Tuple[int, Any]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except ValueError:
            out.append((number, _NotJson))
    return out


def load_alpaca_json(data: bytes) -> Rows:
    rows = Rows()
    for where, obj in _alpaca_items(data):
        rows.read += 1
        if obj is _NotJson:
            rows.add_bad(where, "not JSON")
            continue
        if not isinstance(obj, dict):
            rows.add_bad(where, "not a JSON object")
            continue
        instruction, input_text, output = obj.get("instruction"), obj.get("input") or "", obj.get("output")
        if not isinstance(instruction, str) or not instruction.strip():
            rows.add_bad(where, "no `instruction` string")
        elif not isinstance(input_text, str):
            rows.add_bad(where, "`input` is not a string")
        elif not isinstance(output, str) or not output.strip():
            rows.add_bad(where, "no `output` string")
        else:
            rows.instruction.append(instruction)
            rows.input.append(input_text)
            rows.output.append(output)
    return rows


# -- MMLU / CMMLU CSV ---------------------------------------------------------

CHOICES = ("A", "B", "C", "D")


def _header(cells: Sequence[str]) -> Optional[Dict[str, int]]:
    names = [c.strip().lower() for c in cells]
    if "question" in names and "answer" in names and all(c.lower() in names for c in CHOICES):
        return {key: names.index(key.lower()) for key in ("question", "answer") + CHOICES}
    return None


def format_choice_question(question: str, options: Sequence[str]) -> str:
    return question.strip() + "".join(f"\n{letter}. {text.strip()}" for letter, text in zip(CHOICES, options))


def load_mmlu_csv(data: bytes) -> Rows:
    """MMLU (no header: question, A, B, C, D, answer) or CMMLU (header with Question..Answer)."""
    rows = Rows()
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    columns = None
    for number, cells in enumerate(reader, 1):
        if not cells or not any(c.strip() for c in cells):
            continue
        if number == 1:
            columns = _header(cells)
            if columns is not None:
                continue
        rows.read += 1
        if columns is not None:
            if len(cells) <= max(columns.values()):
                rows.add_bad(reader.line_num, f"{len(cells)} columns, the header has {max(columns.values()) + 1}")
                continue
            question, answer = cells[columns["question"]], cells[columns["answer"]]
            options = [cells[columns[c]] for c in CHOICES]
        else:
            if len(cells) != 6:
                rows.add_bad(reader.line_num, f"{len(cells)} columns, expected 6 (question, A, B, C, D, answer)")
                continue
            question, *options, answer = cells
        answer = answer.strip().upper()
        if answer not in CHOICES:
            rows.add_bad(reader.line_num, f"answer {answer!r} is not one of A, B, C, D")
        elif not question.strip():
            rows.add_bad(reader.line_num, "empty question")
        else:
            rows.instruction.append(format_choice_question(question, options))
            rows.input.append("")
            rows.output.append(answer)
    return rows


def load(data: bytes, fmt: str, drop_repeats: bool = True, field: str = "spec.data.source",
         where: str = "") -> Rows:
    """The rows of a file in `fmt`; a file that is not text is a SpecError on
    `field`.uri naming `where` (bad rows are counted, the caller decides)."""
    if fmt not in FORMATS:
        raise SpecError(f"{field}.format", f"one of {', '.join(FORMATS)} (got {fmt!r})")
    try:
        if fmt == "contest-jsonl":
            return load_contest_jsonl(data, drop_repeats)
        if fmt == "alpaca-json":
            return load_alpaca_json(data)
        return load_mmlu_csv(data)
    except UnicodeDecodeError as exc:
        raise SpecError(f"{field}.uri", f"a UTF-8 {fmt} file ({where}: byte {exc.start} is not UTF-8)") from exc


def source_files(path: Path, fmt: str, field: str) -> List[Path]:
    """[path] for a file; for a directory every file of `fmt` in it (not in subdirectories,
    hidden ones skipped), sorted by name. A directory with none is a SpecError on `field`."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    suffixes = SUFFIXES.get(fmt, ())
    files = sorted(f for f in path.iterdir()
                   if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes)
    if not files:
        pattern = ", ".join(f"*{s}" for s in suffixes)
        raise SpecError(field, f"a {fmt} file, or a directory with at least one ({pattern}); {path} has none")
    return files


def load_files(paths: Sequence[Path], fmt: str, drop_repeats: bool = True, field: str = "spec.data.source") -> Rows:
    """The rows of every file, in order; a bad row's reason names its file when there are several."""
    if len(paths) == 1:
        return load(Path(paths[0]).read_bytes(), fmt, drop_repeats, field, where=str(paths[0]))
    rows = Rows()
    for path in paths:
        part = load(Path(path).read_bytes(), fmt, drop_repeats, field, where=str(path))
        rows.instruction += part.instruction
        rows.input += part.input
        rows.output += part.output
        rows.read += part.read
        rows.repeats_dropped += part.repeats_dropped
        rows.unwrapped += part.unwrapped
        rows.bad += part.bad
        room = MAX_REPORTED_BAD - len(rows.bad_examples)
        rows.bad_examples += [(where, f"{Path(path).name}: {why}") for where, why in part.bad_examples[:room]]
    return rows
