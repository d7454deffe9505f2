"""Schemathesis against the published OpenAPI, in-process: no server error, answers as documented.

Every operation of ``/api/openapi.json`` is called with generated parameters and bodies, once for an
anonymous client and once for each of several signed-in roles (session cookie + ``X-CSRF-Token``).
Half of the generated family pseudonyms are swapped for a real one inside the account's territory, so
the cards and re-identification are reached, not only their 404. The checks: no 5xx, every status code
and body as the schema documents it, and a JSON content type.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from web_support import Nation, citizen_sign_in, make_app, sign_in, web_nation  # noqa: F401

pytestmark = pytest.mark.xdist_group("web_api_fuzz")

# Examples per operation and principal: 8 keeps the module well under a minute; raise it to hunt.
EXAMPLES = int(os.environ.get("FAMILYCARD_FUZZ_EXAMPLES", "8"))
WHO = ("anonymous", "worker", "analyst", "officer", "auditor", "admin", "citizen")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(web_nation: Nation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = make_app(web_nation, tmp_path_factory.mktemp("web-fuzz"), os.environ.get("FAMILYCARD_FUZZ_STORE"))
    yield app
    app.state.ctx.store.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def sessions(fuzz_app: FastAPI, web_nation: Nation) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Each principal's (cookies, headers)."""
    out: dict[str, tuple[dict[str, str], dict[str, str]]] = {"anonymous": ({}, {})}
    for who in WHO[1:-1]:
        c = TestClient(fuzz_app)
        csrf = sign_in(c, who)
        out[who] = ({"fc_session": str(c.cookies["fc_session"])}, {"X-CSRF-Token": csrf})
    snap = fuzz_app.state.ctx.snapshot
    iin = next(str(p["iin"]) for p in snap.identities(web_nation.family_id) if p["iin"] and p["phones"])
    c = TestClient(fuzz_app)
    citizen_sign_in(c, fuzz_app, iin)
    csrf = str(c.get("/api/v1/session").json()["csrf"])
    out["citizen"] = ({"fc_session": str(c.cookies["fc_session"])}, {"X-CSRF-Token": csrf})
    return out


CASES: dict[str, int] = {}
STATUSES: set[tuple[str, int]] = set()


def fuzz_operation(
    op: Any, mode: GenerationMode, examples: int, cookies: dict[str, str], headers: dict[str, str], real: str
) -> tuple[int, str | None]:
    """Run ``examples`` generated cases of one operation; (cases run, the first failure report or None)."""
    ran = 0

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        pseudonym = (case.path_parameters or {}).get("pseudonym")
        if isinstance(pseudonym, str) and zlib.crc32(pseudonym.encode()) % 2:
            case.path_parameters["pseudonym"] = real  # reach the card, not only its 404
        ran += 1
        response = case.call_and_validate(headers=headers, cookies=cookies, checks=CHECKS)
        STATUSES.add((op.label, response.status_code))

    try:
        run()
    except Unsatisfiable:  # nothing to negate: an operation without parameters or body
        return ran, None
    except (
        Exception,
        BaseExceptionGroup,
    ) as exc:  # a schemathesis FailureGroup (or an error of the app) with its report
        return ran, f"{op.label} ({mode.value}): {exc}"
    return ran, None


@pytest.mark.parametrize("who", WHO)
def test_api_conforms(
    who: str, api_schema: Any, sessions: dict, fuzz_app: FastAPI, web_nation: Nation
) -> None:
    cookies, headers = sessions[who]
    real = fuzz_app.state.ctx.keys.pseudonym("family", web_nation.family_id)
    failures: list[str] = []
    ops = [result.ok() for result in api_schema.get_all_operations()]
    assert len(ops) >= 14
    for op in ops:
        for mode, examples in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, EXAMPLES // 2)):
            ran, failure = fuzz_operation(op, mode, examples, cookies, headers, real)
            CASES[who] = CASES.get(who, 0) + ran
            if failure:
                failures.append(failure)
    print(f"schemathesis as {who}: {len(ops)} operations, {CASES[who]} cases")  # noqa: T201
    assert CASES[who] >= 50
    if who == "worker":  # the generated requests got past the doors, not only to their refusals
        assert ("GET /api/v1/families/{pseudonym}", 200) in STATUSES
    assert not failures, f"{len(failures)} operations fail as {who}:\n" + "\n\n".join(failures)


PG = os.environ.get("FAMILYCARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    import psycopg

    name = f"familycard_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield f"{PG.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def test_control_characters_are_refused_not_a_server_error(
    web_nation: Nation, tmp_path: Path, store_url: str | None
) -> None:
    """A NUL in a text input is a 4xx on every store (PostgreSQL cannot store one: it was a 500)."""
    app = make_app(web_nation, tmp_path, store_url)
    try:
        auditor, admin, anonymous = (TestClient(app, raise_server_exceptions=False) for _ in range(3))
        sign_in(auditor, "auditor")
        csrf = sign_in(admin, "admin")
        account = {
            "username": "newone",
            "display_name": "x\x00y",
            "role": "auditor",
            "password": "x9!long pass y7",
        }
        got = {
            "audit search": auditor.get("/api/v1/audit", params={"family": "fam-1-\x00"}).status_code,
            "account (API)": admin.post(
                "/api/v1/accounts", json=account, headers={"X-CSRF-Token": csrf}
            ).status_code,
            "account (form)": admin.post(
                "/admin/accounts",
                data={**account, "username": "newtwo", "csrf": csrf},
                follow_redirects=False,
            ).status_code,
            "measure": admin.post(
                "/api/v1/accounts",
                json={**account, "display_name": "ok", "role": "agency_officer", "measure": "t\x00sa"},
                headers={"X-CSRF-Token": csrf},
            ).status_code,
        }
        anonymous.get("/login")
        got["sign-in"] = anonymous.post(
            "/login",
            data={
                "username": "ad\x00min",
                "password": "a long test passphrase 42",
                "pre": anonymous.cookies["fc_pre"],
            },
            follow_redirects=False,
        ).status_code
        assert got == {
            "audit search": 422,
            "account (API)": 422,
            "account (form)": 422,
            "measure": 422,
            "sign-in": 401,
        }
    finally:
        app.state.ctx.store.close()
