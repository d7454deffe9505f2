"""Benchmark: the web platform's answers over an assessed warehouse (in-process, no network).

Not part of the test suite. Builds the app over DATA with a fresh operational store and secrets in a
scratch folder, creates a national analyst and a social worker (scoped to the region of the most
deprived family), and times: the first pseudonym maps (families and persons, built once per snapshot
and key), then REPEAT requests each of the overview, a page of the family list, a family card with and
without a purpose, a re-identification and an audit verification. Usage:

    .venv/bin/familycard demo --no-serve                    # or any assessed DATA
    .venv/bin/python bench/web.py --data demo/data --repeat 50

A larger warehouse comes from ``bench/scoring.py --copies K --out DIR`` (DIR/data).
It prints one JSON line: families, and per request kind the median and 95th percentile in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import measured

from familycard.security.accounts import create_account
from familycard.security.audit import verify
from familycard.settings import Settings
from familycard.store.warehouse import Warehouse
from familycard.web.app import create_app

PASSWORD = "benchmark passphrase 2026"


def _sign_in(client: TestClient, username: str) -> str:
    client.get("/login")
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "pre": client.cookies.get("fc_pre")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(client.get("/api/v1/session").json()["csrf"])


def _times(repeat: int, call: Callable[[int], object]) -> dict[str, float]:
    took = []
    for i in range(repeat):
        t = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return {
        "p50_ms": round(statistics.median(took), 1),
        "p95_ms": round(took[int(0.95 * (len(took) - 1))], 1),
    }


def bench(data: Path, repeat: int) -> dict[str, object]:
    wh = Warehouse(data)
    run = wh.published() or wh.current()
    scores = pq.read_table(wh.table_path("family_scores", run), columns=["family_id", "kato", "score"])
    top = scores.sort_by([("score", "descending")])
    region = str(top.column("kato")[0])[:2]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data=data, store_url=f"sqlite:///{Path(tmp) / 'op.sqlite3'}", secrets_dir=Path(tmp) / "secrets"
        )
        app = create_app(settings)
        ctx = app.state.ctx
        with ctx.store.transaction() as db:
            create_account(
                db, username="analyst", display_name="A", role="national_analyst", password=PASSWORD
            )
            create_account(
                db,
                username="worker",
                display_name="W",
                role="social_worker",
                territory=region,
                password=PASSWORD,
            )
        out: dict[str, object] = {"families": scores.num_rows, "snapshot": run}
        t = time.perf_counter()
        ctx.snapshot.pseudonym_map("family", ctx.keys.current)
        out["family_map_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        ctx.snapshot.pseudonym_map("person", ctx.keys.current)
        out["person_map_s"] = round(time.perf_counter() - t, 2)

        analyst, worker = TestClient(app), TestClient(app)
        _sign_in(analyst, "analyst")
        csrf = _sign_in(worker, "worker")
        listing = worker.get("/api/v1/families", params={"limit": 50}).json()
        cards = [f["pseudonym"] for f in listing["families"]]

        def ok(r: object) -> None:
            assert getattr(r, "status_code", 0) == 200, getattr(r, "text", "")

        out["overview"] = _times(repeat, lambda i: ok(analyst.get("/api/v1/overview")))
        out["family_list"] = _times(
            repeat, lambda i: ok(analyst.get("/api/v1/families", params={"offset": 50 * i, "limit": 50}))
        )
        out["family_card"] = _times(
            repeat, lambda i: ok(worker.get(f"/api/v1/families/{cards[i % len(cards)]}"))
        )
        out["family_card_purpose"] = _times(
            repeat,
            lambda i: ok(
                worker.get(f"/api/v1/families/{cards[i % len(cards)]}", params={"purpose": "case_work"})
            ),
        )
        out["family_page"] = _times(repeat, lambda i: ok(worker.get(f"/families/{cards[i % len(cards)]}")))
        out["reidentify"] = _times(
            repeat,
            lambda i: ok(
                worker.post(
                    f"/api/v1/families/{cards[i % len(cards)]}/identity",
                    json={"purpose": "case_work"},
                    headers={"X-CSRF-Token": csrf},
                )
            ),
        )
        t = time.perf_counter()
        check = verify(ctx.store)
        out["audit_rows"] = check.rows
        out["audit_verify_s"] = round(time.perf_counter() - t, 3)
        assert check.ok
        ctx.store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="An assessed warehouse directory.")
    parser.add_argument("--repeat", type=int, default=50, help="Requests of each kind.")
    args = parser.parse_args()
    result, seconds, peak = measured(lambda: bench(args.data, args.repeat))
    print(json.dumps({**result, "seconds": round(seconds, 1), "peak_rss_gib": round(peak / 2**30, 2)}))


if __name__ == "__main__":
    main()
