"""Every JSON example in docs/mappings.md is valid against the mapping models it claims to show."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shared.domain.mappings import SECTION_MODELS, WorkspaceCreate

DOC = Path(__file__).resolve().parents[2] / "docs" / "mappings.md"
MODELS: dict[str, type[BaseModel]] = {**SECTION_MODELS, "workspace": WorkspaceCreate}
_BLOCK = re.compile(r"(?:<!-- model: (?P<model>[a-z]+) -->\n)?```json\n(?P<body>.*?)```", re.DOTALL)


def _examples() -> list[tuple[str | None, str, int]]:
    text = DOC.read_text(encoding="utf-8")
    return [(m.group("model"), m.group("body"), text.count("\n", 0, m.start()) + 1) for m in _BLOCK.finditer(text)]


def test_the_doc_has_examples_for_every_section() -> None:
    models = {model for model, _, _ in _examples()}
    assert models == set(MODELS)


@pytest.mark.parametrize(("model", "body", "line"), _examples(), ids=lambda v: str(v)[:20])
def test_example_is_valid(model: str | None, body: str, line: int) -> None:
    assert model in MODELS, f"docs/mappings.md:{line}: a JSON example needs a `<!-- model: … -->` line above it"
    document: Any = json.loads(body)
    validated = MODELS[model].model_validate(document)
    # Round trip: what the doc shows is what the store keeps (no key silently dropped).
    dumped = validated.model_dump(mode="json", exclude_defaults=True)
    for key in document:
        assert key in validated.model_dump(mode="json"), f"docs/mappings.md:{line}: unknown key {key}"
    assert MODELS[model].model_validate(dumped) == validated


def test_a_wrong_example_would_be_caught() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SECTION_MODELS["export"].model_validate({"contact": {"fields": [{"source": "email", "column": "Bad Column"}]}})
