"""A first walk through the platform: sign in, list, open a card, re-identify, verify the audit."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_support import Nation, sign_in, web_app, web_nation  # noqa: F401

from familycard.security.audit import verify


def test_a_social_worker_walks_through(web_app: FastAPI, web_nation: Nation) -> None:
    c = TestClient(web_app)
    csrf = sign_in(c, "worker")
    listing = c.get("/api/v1/families").json()
    assert listing["total"] > 0
    pseudonym = listing["families"][0]["pseudonym"]
    assert pseudonym.startswith("fam-")
    plain = c.get(f"/api/v1/families/{pseudonym}").json()
    full = c.get(f"/api/v1/families/{pseudonym}", params={"purpose": "case_work"}).json()
    assert plain["level"] == full["level"]
    assert len(full["deprivations"]) == len(plain["deprivations"]) + plain["withheld_indicators"]
    who = c.post(
        f"/api/v1/families/{pseudonym}/identity", json={"purpose": "case_work"}, headers={"X-CSRF-Token": csrf}
    )
    assert who.status_code == 200
    assert all(m["iin"] for m in who.json()["members"] if m["iin"] is not None)
    for page in ("/", "/overview", "/families", f"/families/{pseudonym}"):
        assert c.get(page).status_code == 200, page
    result = verify(web_app.state.ctx.store)
    assert result.ok and result.rows >= 5
