"""The platform's documentation stays true: every API route is in docs/api.md, and no more."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI

DOCS = Path(__file__).parents[1] / "docs"


def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    from familycard.web.app import route_table

    return {(method, path) for method, path, in_schema in route_table(app) if in_schema}


def test_api_doc_lists_every_api_route(tmp_path: Path) -> None:
    from familycard.settings import Settings
    from familycard.web.app import create_app

    app = create_app(Settings(data=tmp_path / "data", secrets_dir=tmp_path / "secrets"))
    documented = set(
        re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (\S+)`", (DOCS / "api.md").read_text(), re.M)
    )
    assert documented == _app_routes(app)
    app.state.ctx.store.close()


def test_privacy_doc_names_every_role_and_purpose() -> None:
    from familycard.security.policy import load_policy

    text = (DOCS / "privacy.md").read_text()
    policy = load_policy()
    for purpose in policy.purposes:
        assert purpose.replace("_", " ") in text or purpose in text, purpose
    for category in policy.categories:
        assert f"| {category} |" in text, category
