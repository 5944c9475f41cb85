"""The base of every API model: camelCase on the wire, snake_case in Python."""
from typing import Any, ClassVar, Dict, List

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined


class ApiModel(BaseModel):
    """Fields are read as `spec.training.batch_size` and written as
    `batchSize`. Unknown fields are refused (the API server prunes them; a run
    file given to run-local names the typo instead). Parsed objects are
    frozen: a spec is read, never edited, below the parse."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
    RULES: ClassVar[List[Dict[str, Any]]] = []

    def wire(self) -> Dict[str, Any]:
        """The object as the API server holds it (camelCase, absent fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def F(desc: str, default: Any = PydanticUndefined, **kw: Any) -> Any:
    """A field with its description first, as the reference reads."""
    return Field(default, description=desc, **kw)


def block(desc: str, cls: type, **kw: Any) -> Any:
    """A block the API server fills with its defaults when the user leaves it out."""
    return Field(default_factory=cls, description=desc, **kw)
