"""The stage-result contract (docs/stage-result.schema.json), as tests on both
sides check it: the pipeline's tests validate every result its real stages
write; the operator's tests parse results that satisfy it."""
import json
from pathlib import Path
from typing import Any, Dict

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "stage-result.schema.json"
_validator = None


def check(result: Dict[str, Any]) -> Dict[str, Any]:
    """`result`, after failing the test with every way it breaks the contract."""
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(SCHEMA_FILE.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(_validator.iter_errors(result), key=lambda e: list(e.absolute_path))
    assert not errors, "stage result breaks docs/stage-result.schema.json:\n" + "\n".join(
        f"  {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors) + f"\n{result}"
    return result
