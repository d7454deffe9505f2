"""Shared helpers of the web platform's tests: one small assessed nation per test process, and an app
over it with its own operational store and secrets.

Import the fixtures into a test module with ``from web_support import web_nation  # noqa: F401``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from familycard.pipeline import run_pipeline
from familycard.security.accounts import create_account
from familycard.settings import Settings
from familycard.store.warehouse import Warehouse
from familycard.synth.config import SynthConfig
from familycard.synth.generate import generate
from familycard.web.app import create_app

PASSWORD = "a long test passphrase 42"
# One account per role: (username, role, territory digits of the sample family's KATO, measure)
ROLES = (
    ("analyst", "national_analyst", 0, None),
    ("region", "regional_analyst", 2, None),
    ("worker", "social_worker", 4, None),
    ("supervisor", "supervisor", 4, None),
    ("officer", "agency_officer", 0, "tsa"),
    ("auditor", "auditor", 0, None),
    ("admin", "administrator", 0, None),
)


@dataclass(frozen=True)
class Nation:
    data: Path
    kato: str  # KATO of the most deprived family (accounts are scoped around it)
    family_id: str
    other_kato: str  # KATO of a family in another region


@pytest.fixture(scope="session")
def web_nation(tmp_path_factory: pytest.TempPathFactory) -> Nation:
    """A small nation, generated and run through the pipeline once per test process."""
    root = tmp_path_factory.mktemp("web-nation")
    generate(SynthConfig(families=150, seed=5, months=3), root / "nation", workers=1)
    run_pipeline(root / "nation" / "sources", root / "data")
    scores = (
        Warehouse(root / "data")
        .read("family_scores")
        .sort_by([("score", "descending"), ("family_id", "ascending")])
    )
    kato = str(scores.column("kato")[0])
    others = [str(k) for k in scores.column("kato").to_pylist() if str(k)[:2] != kato[:2]]
    return Nation(root / "data", kato, str(scores.column("family_id")[0]), others[0])


def make_app(nation: Nation, tmp: Path, store_url: str | None = None) -> FastAPI:
    """An app over ``nation`` with a fresh store (SQLite in ``tmp`` unless ``store_url``) and secrets."""
    settings = Settings(
        data=nation.data,
        store_url=store_url or f"sqlite:///{tmp / 'operational.sqlite3'}",
        secrets_dir=tmp / "secrets",
    )
    app = create_app(settings)
    with app.state.ctx.store.transaction() as db:
        for username, role, digits, measure in ROLES:
            create_account(
                db,
                username=username,
                display_name=username.title(),
                role=role,
                territory=nation.kato[:digits],
                measure=measure,
                password=PASSWORD,
            )
    return app


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``username`` in through the login form; the session's CSRF token."""
    client.get("/login")
    pre = client.cookies.get("fc_pre")
    r = client.post(
        "/login", data={"username": username, "password": password, "pre": pre}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return str(client.get("/api/v1/session").json()["csrf"])


def citizen_sign_in(client: TestClient, app: FastAPI, iin: str) -> None:
    """Sign a citizen in with the one-time code the demo gateway 'sent'."""
    client.get("/citizen/login")
    pre = client.cookies.get("fc_pre")
    r = client.post("/citizen/code", data={"iin": iin, "pre": pre})
    assert r.status_code == 200, r.text
    messages = app.state.ctx.sms.messages()
    code = re.search(r"\b(\d{6})\b", messages[-1]["text"])
    assert code is not None
    r = client.post(
        "/citizen/login", data={"iin": iin, "code": code.group(1), "pre": pre}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


@pytest.fixture
def web_app(web_nation: Nation, tmp_path: Path) -> Iterator[FastAPI]:
    app = make_app(web_nation, tmp_path)
    yield app
    app.state.ctx.store.close()
