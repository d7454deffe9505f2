"""A first walk through the platform: sign in, list, open a card, re-identify, verify the audit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_support import Nation, make_app, sign_in, web_app, web_nation  # noqa: F401

from familycard.security.audit import verify
from familycard.store.warehouse import Warehouse

pytestmark = pytest.mark.xdist_group("web_smoke")


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
        f"/api/v1/families/{pseudonym}/identity",
        json={"purpose": "case_work"},
        headers={"X-CSRF-Token": csrf},
    )
    assert who.status_code == 200
    assert all(m["iin"] for m in who.json()["members"] if m["iin"] is not None)
    for page in ("/", "/overview", "/families", f"/families/{pseudonym}"):
        assert c.get(page).status_code == 200, page
    result = verify(web_app.state.ctx.store)
    assert result.ok and result.rows >= 5


def test_a_running_pipeline_never_changes_what_the_web_reads(web_nation: Nation, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(web_nation.data, data)
    app = make_app(Nation(data, web_nation.kato, web_nation.family_id, web_nation.other_kato), tmp_path)
    c = TestClient(app)
    before = c.get("/healthz").json()["snapshot"]
    wh = Warehouse(data)
    run = wh.begin()
    run.carry_rest()  # a run in progress: every table carried, not yet committed
    assert c.get("/healthz").json()["snapshot"] == before
    sign_in(c, "analyst")
    assert c.get("/api/v1/overview").json()["snapshot"] == before
    run.commit()
    assert c.get("/healthz").json()["snapshot"] == before  # committed but not published: still the old one
    wh.publish()
    assert c.get("/healthz").json()["snapshot"] == run.id != before
    assert c.get("/api/v1/overview").json()["snapshot"] == run.id
    app.state.ctx.store.close()


def test_serve_starts_the_web_app(web_nation: Nation, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "FAMILYCARD_STORE_URL": f"sqlite:///{tmp_path / 'op.sqlite3'}",
        "FAMILYCARD_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    cmd = [
        sys.executable,
        "-m",
        "familycard.cli",
        "serve",
        "--data",
        str(web_nation.data),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                    headers = r.headers
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
        assert health["status"] == "ok" and health["store"] == "sqlite"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/families", "/families"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://x.example", "/"),
        (None, "/"),
    ],
)
def test_redirects_after_sign_in_stay_on_this_site(target: str | None, safe: str) -> None:
    from familycard.web.views.auth import _safe_next

    assert _safe_next(target) == safe


def test_command_line_reads_of_personal_data_are_audited(web_nation: Nation, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from familycard.cli import app as cli
    from familycard.security.audit import verify as verify_chain
    from familycard.settings import Settings
    from familycard.store.models import AuditEvent
    from familycard.store.operational import open_store

    data = tmp_path / "data"
    shutil.copytree(web_nation.data, data)
    runner = CliRunner()
    out = tmp_path / "members.csv"
    assert (
        runner.invoke(cli, ["explain", "--data", str(data), "--family", web_nation.family_id]).exit_code == 0
    )
    args = ["export", "--data", str(data), "--table", "family_members", "--format", "csv", "--out", str(out)]
    assert runner.invoke(cli, args).exit_code == 0
    store = open_store(Settings(data=data).store)
    with store.transaction() as db:
        rows = [
            (e.action, e.role, e.object_id, e.subject_family)
            for e in db.query(AuditEvent).order_by(AuditEvent.seq)
        ]
    assert rows == [
        ("family.explain", "operator", web_nation.family_id, web_nation.family_id),
        ("warehouse.export", "operator", "family_members", ""),
    ]
    assert verify_chain(store).ok
    store.close()


def test_the_pseudonym_map_holds_every_family_and_person(web_app: FastAPI, web_nation: Nation) -> None:
    import pyarrow.parquet as pq

    snapshot = web_app.state.ctx.snapshot
    snapshot.warm()
    wh = Warehouse(web_nation.data)
    for kind, table, column in (("family", "families", "family_id"), ("person", "persons", "person_id")):
        mapped = pq.read_table(snapshot.pseudonym_map(kind, snapshot.keys.current)).to_pylist()
        ids = [str(x) for x in wh.read(table, snapshot.run()).column(column).to_pylist()]
        assert sorted(r["id"] for r in mapped) == sorted(ids)
        assert all(r["pseudonym"] == snapshot.pseudonym(kind, r["id"]) for r in mapped)


def test_the_web_reads_only_current_mobile_numbers(web_nation: Nation, tmp_path: Path) -> None:
    """The web's views over a feed history leave out the rows its superseded list names (a number a
    later run closed, or a first delivery's earlier version): no SMS goes to a number no longer held."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from familycard.security.pseudonyms import KeyRing
    from familycard.store.engine import SUPERSEDED
    from familycard.web.snapshot import Snapshot

    data = tmp_path / "data"
    shutil.copytree(web_nation.data, data)
    wh = Warehouse(data)
    snap = Snapshot(data, KeyRing(tmp_path / "keys"))
    person = next(p for p in snap.identities(web_nation.family_id) if p["iin"] and p["phones"])
    links = wh.read("person_links").to_pylist()
    keys = {str(r["record_key"]) for r in links if r["feed"] == "mobile_numbers"}
    numbers = [
        r
        for r in wh.read("src_mobile_numbers").to_pylist()
        if r["phone"] in person["phones"] and r["_key"] in keys and r["_valid_to_seq"] is None
    ]
    gone = numbers[0]
    table = wh.table_path("src_mobile_numbers")
    (table / SUPERSEDED).mkdir(exist_ok=True)
    listed = {"_key": [gone["_key"]], "_seq": [gone["_seq"]], "_line": pa.array([gone["_line"]], pa.int64())}
    pq.write_table(pa.table(listed), table / SUPERSEDED / "superseded-test-0000.parquet")
    again = Snapshot(data, KeyRing(tmp_path / "keys"))
    phones = next(p["phones"] for p in again.identities(web_nation.family_id) if p["iin"] == person["iin"])
    assert gone["phone"] not in phones
    assert sorted(phones) == sorted({r["phone"] for r in numbers[1:]})
