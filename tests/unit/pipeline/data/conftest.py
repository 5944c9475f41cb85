"""Fixtures for the data-preparation tests: the 200 real contest rows and the real Llama 3 tokenizer."""
import json
from pathlib import Path

import pytest
from tests.conftest import LLAMA3_TOKENIZER


@pytest.fixture(scope="session")
def contest_200_path(real_fixtures) -> Path:
    path = real_fixtures / "contest" / "data_200_random.jsonl"
    if not path.is_file():
        pytest.fail(f"missing real fixture {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def contest_200(contest_200_path):
    rows = [json.loads(line) for line in contest_200_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 200, f"{contest_200_path} should hold 200 rows, has {len(rows)}"
    return rows


@pytest.fixture(scope="session")
def llama3_tokenizer_json() -> Path:
    """The real Llama 3 tokenizer, as `make tokenizer` installs it from its
    npm package (pinned, digest-checked), not a copy beside the checkout."""
    path = LLAMA3_TOKENIZER
    if not path.is_file():
        pytest.fail(f"missing the real Llama 3 tokenizer {path}: run `make tokenizer`", pytrace=False)
    return path
