"""Writes docs/openapi.json and the SQS producer JSON Schemas from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from core.models.envelope import INGRESS_ADAPTER
from functions.api.app import create_app, openapi_json

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    (DOCS / "openapi.json").write_text(json.dumps(json.loads(openapi_json(create_app())), indent=2) + "\n")
    schema = INGRESS_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "wagate ingress message"
    (DOCS / "schemas").mkdir(exist_ok=True)
    (DOCS / "schemas" / "ingress-message.json").write_text(json.dumps(schema, indent=2) + "\n")
    print("wrote docs/openapi.json and docs/schemas/ingress-message.json")


if __name__ == "__main__":
    main()
