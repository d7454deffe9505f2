"""Privacy: no identifying field in analytics answers, no IIN or name in pages, keyed pseudonyms, audit.

- The OpenAPI response schemas of every operation (all status codes) are walked recursively: no IIN,
  name or phone field anywhere, except in the re-identification answer (``Identity``) and the
  citizen's own card (``MyCard``).
- The families list and the family card pages, in each language and with each purpose, hold no valid
  IIN and none of the members' real surnames or given names (from the warehouse ``persons`` table).
- Pseudonyms are keyed (HMAC): stable under a key, different under another key, and after a rotation
  the old ones still open the card until their key is retired.
- Every read of a family is in the audit log with the actor, role and purpose, and the chain holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_support import Nation, make_app, sign_in, web_app, web_nation  # noqa: F401

from familycard.identity.iin import is_valid
from familycard.security.audit import verify
from familycard.security.pseudonyms import KeyRing
from familycard.store.models import AuditEvent
from familycard.store.warehouse import Warehouse

pytestmark = pytest.mark.xdist_group("web_privacy")

# Field names that identify a person, wherever they appear in an answer.
IDENTIFYING = re.compile(
    r"^(iin|.*_iin|surname|given_name|patronymic|full_name|first_name|last_name|middle_name|"
    r"birth_name|maiden_name|person_name|phone|phones|.*_phone|mobile|msisdn|email)$",
    re.IGNORECASE,
)
# A bare "name" is a person's name when the object describes a person.
PERSONISH = {"age", "sex", "birth_date", "uncertain", "iin", "gender"}
# The only answers that may identify: re-identification (purpose-bound, audited) and the citizen's own card.
EXEMPT = {("post", "/api/v1/families/{pseudonym}/identity", "200"), ("get", "/api/v1/me", "200")}
# Staff accounts carry their holder's display name: shown to administrators only, not a family's data.
STAFF_NAMES = {("AccountOut", "display_name")}
IIN_RE = re.compile(r"(?<!\d)\d{12}(?!\d)")


@pytest.fixture(scope="module")
def app(web_nation: Nation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = make_app(web_nation, tmp_path_factory.mktemp("web-privacy"))
    yield app
    app.state.ctx.store.close()


@pytest.fixture(scope="module")
def clients(app: FastAPI) -> Iterator[dict[str, tuple[TestClient, str]]]:
    out = {}
    for name in ("analyst", "worker", "supervisor", "officer", "auditor"):
        c = TestClient(app)
        out[name] = (c, sign_in(c, name))
    yield out
    for c, _ in out.values():
        c.close()


# --- the OpenAPI schemas ---------------------------------------------------------------------------


def walk(spec: dict[str, Any], node: Any, where: str, seen: frozenset[str], found: list[str]) -> None:
    """Every property of ``node`` (following $refs, items, compositions) that identifies a person."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            walk(spec, item, f"{where}[{i}]", seen, found)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            walk(spec, spec["components"]["schemas"][name], f"{where}→{name}", seen | {name}, found)
        return
    props = node.get("properties", {})
    title = where.rsplit("→", 1)[-1]
    if isinstance(props, dict):
        personish = bool(PERSONISH & set(props))
        for key, sub in props.items():
            if (title, key) in STAFF_NAMES:
                continue
            if IDENTIFYING.match(key) or (key == "name" and personish):
                found.append(f"{where}.{key}")
            walk(spec, sub, f"{where}.{key}", seen, found)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
        if key in node:
            walk(spec, node[key], f"{where}.{key}", seen, found)


def test_no_identifying_field_in_analytics_answers(app: FastAPI) -> None:
    spec = TestClient(app).get("/api/openapi.json").json()
    found: list[str] = []
    scanned = exempt = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op.get("responses", {}).items():
                if (method, path, status) in EXEMPT:
                    exempt += 1
                    continue
                for media, content in response.get("content", {}).items():
                    scanned += 1
                    walk(
                        spec,
                        content.get("schema", {}),
                        f"{method.upper()} {path} {status} {media}",
                        frozenset(),
                        found,
                    )
    assert scanned > 20 and exempt == len(EXEMPT)
    assert not found, "identifying fields in answers:\n" + "\n".join(found)


def test_the_scan_would_see_an_identifying_field(app: FastAPI) -> None:
    """The walker itself: the exempt answers do hold identifying fields, and it finds them."""
    spec = TestClient(app).get("/api/openapi.json").json()
    found: list[str] = []
    op = spec["paths"]["/api/v1/families/{pseudonym}/identity"]["post"]
    walk(
        spec, op["responses"]["200"]["content"]["application/json"]["schema"], "identity", frozenset(), found
    )
    assert {f.rsplit(".", 1)[-1] for f in found} >= {"iin", "surname", "given_name", "patronymic", "phones"}


# --- the pages -------------------------------------------------------------------------------------


def names_of(data: Path, family_ids: set[str]) -> dict[str, set[str]]:
    """Each family's members' real surnames and given names (the warehouse's persons table)."""
    wh = Warehouse(data)
    members = wh.read("family_members").select(["family_id", "person_id"]).to_pylist()
    wanted = {m["person_id"]: m["family_id"] for m in members if m["family_id"] in family_ids}
    persons = wh.read("persons")
    persons = persons.filter(pc.is_in(persons["person_id"], value_set=pa.array(list(wanted))))
    out: dict[str, set[str]] = {f: set() for f in family_ids}
    for p in persons.select(["person_id", "surname", "given_name"]).to_pylist():
        for value in (p["surname"], p["given_name"]):
            if value and len(value) >= 3:
                out[wanted[p["person_id"]]].add(str(value))
    return out


def leaks(html: str, names: set[str]) -> list[str]:
    problems = [f"IIN {m}" for m in IIN_RE.findall(html) if is_valid(m)]
    text = re.sub(r"<[^>]+>", " ", html)
    problems += [f"name {n!r}" for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
    return problems


def test_pages_show_no_iin_and_no_name(app: FastAPI, clients: dict, web_nation: Nation) -> None:
    keys = app.state.ctx.keys
    scores = Warehouse(web_nation.data).read("family_scores").to_pylist()
    by_pseudonym = {keys.pseudonym("family", str(r["family_id"])): str(r["family_id"]) for r in scores}
    names = names_of(web_nation.data, set(by_pseudonym.values()))
    assert sum(len(v) for v in names.values()) > 100
    problems: list[str] = []
    pages = 0
    for who in ("analyst", "worker", "supervisor"):
        c, _ = clients[who]
        purposes = c.get("/api/v1/session").json()["purposes"]
        for lang in ("kk", "ru", "en"):
            listing = c.get("/families", params={"lang": lang})
            assert listing.status_code == 200
            shown = [p for p in re.findall(r"fam-\d+-[a-z2-7]{20}", listing.text) if p in by_pseudonym]
            assert shown, "the list shows no family"
            everyone = set().union(*(names[by_pseudonym[p]] for p in shown))
            problems += [f"{who} /families ({lang}): {p}" for p in leaks(listing.text, everyone)]
            pages += 1
            for pseudonym in {shown[0], keys.pseudonym("family", web_nation.family_id)}:
                for purpose in (None, *purposes):
                    params = {"lang": lang} | ({"purpose": purpose} if purpose else {})
                    card = c.get(f"/families/{pseudonym}", params=params)
                    assert card.status_code == 200, (who, pseudonym, purpose, card.status_code)
                    family = names[by_pseudonym[pseudonym]]
                    problems += [
                        f"{who} card {pseudonym} {purpose} ({lang}): {p}" for p in leaks(card.text, family)
                    ]
                    pages += 1
    print(f"pages scanned: {pages}")  # noqa: T201
    assert not problems, "\n".join(problems)


def test_the_page_scan_would_see_a_name(app: FastAPI, clients: dict, web_nation: Nation) -> None:
    """The re-identification page does show the names and IINs: the scan finds them there."""
    c, csrf = clients["worker"]
    pseudonym = app.state.ctx.keys.pseudonym("family", web_nation.family_id)
    page = c.post(f"/families/{pseudonym}/identity", data={"purpose": "case_work", "csrf": csrf})
    assert page.status_code == 200
    names = names_of(web_nation.data, {web_nation.family_id})[web_nation.family_id]
    found = leaks(page.text, names)
    assert any(f.startswith("IIN") for f in found) and any(f.startswith("name") for f in found)


# --- pseudonyms ------------------------------------------------------------------------------------


def test_pseudonyms_are_keyed(tmp_path: Path) -> None:
    one, other = KeyRing(tmp_path / "a"), KeyRing(tmp_path / "b")
    fid = "F6312eee24d72d0facddb"
    assert one.pseudonym("family", fid) == one.pseudonym("family", fid)
    assert KeyRing(tmp_path / "a").pseudonym("family", fid) == one.pseudonym("family", fid)  # kept on disk
    assert one.pseudonym("family", fid) != other.pseudonym("family", fid)
    assert one.pseudonym("family", fid) != one.pseudonym("person", fid)  # a kind is a separate space
    plain = [hashlib.sha256(fid.encode()).hexdigest(), hashlib.sha256(f"family|{fid}".encode()).hexdigest()]
    body = one.pseudonym("family", fid).rsplit("-", 1)[-1]
    assert not any(body in h or h.startswith(body) for h in plain)
    import base64

    for digest in plain:
        raw = base64.b32encode(bytes.fromhex(digest)[:13]).decode().lower()[:20]
        assert raw != body, "the pseudonym is a plain hash: anyone could compute it from an id"
    old = one.pseudonym("family", fid)
    version = one.rotate()
    assert one.pseudonym("family", fid) != old
    assert one.pseudonym("family", fid, version - 1) == old
    assert one.parse(old, "family") == version - 1
    assert (tmp_path / "a" / "pseudonym-keys.json").stat().st_mode & 0o077 == 0


def test_rotation_keeps_old_pseudonyms_until_retired(web_app: FastAPI, web_nation: Nation) -> None:
    admin, worker = TestClient(web_app), TestClient(web_app)
    admin_csrf = sign_in(admin, "admin")
    sign_in(worker, "worker")
    old = worker.get("/api/v1/families").json()["families"][0]["pseudonym"]
    assert old.startswith("fam-1-")
    rotated = admin.post("/api/v1/keys/rotate", headers={"X-CSRF-Token": admin_csrf})
    assert rotated.status_code == 200
    assert [k["version"] for k in rotated.json()["keys"] if k["current"]] == [2]
    new = worker.get("/api/v1/families").json()["families"][0]["pseudonym"]
    assert new.startswith("fam-2-") and new != old
    assert worker.get(f"/api/v1/families/{old}").json()["pseudonym"] == old  # the old link still opens
    assert (
        worker.get(f"/api/v1/families/{new}").json()["level"]
        == worker.get(f"/api/v1/families/{old}").json()["level"]
    )
    web_app.state.ctx.keys.rotate(retire_older_than=2)  # what `familycard keys rotate --retire-older` does
    assert worker.get(f"/api/v1/families/{old}").status_code == 404
    assert worker.get(f"/api/v1/families/{new}").status_code == 200
    versions = {k["version"]: k for k in admin.get("/api/v1/keys").json()["keys"]}
    assert versions[1]["retired"] and not versions[2]["retired"] and versions[3]["current"]
    assert "secret" not in admin.get("/api/v1/keys").text


# --- the audit of reads ----------------------------------------------------------------------------


def test_every_family_read_is_audited(app: FastAPI, clients: dict, web_nation: Nation) -> None:
    store = app.state.ctx.store
    pseudonym = app.state.ctx.keys.pseudonym("family", web_nation.family_id)
    with store.transaction() as db:
        before = int(db.scalar(select(func.max(AuditEvent.seq))) or 0)
    reads: list[tuple[str, str, str, str]] = []  # (actor, role, purpose, action)

    def read(
        who: str, role: str, url: str, purpose: str = "", action: str = "family.view", post: bool = False
    ) -> None:
        c, csrf = clients[who]
        if post:
            r = c.post(url, json={"purpose": purpose}, headers={"X-CSRF-Token": csrf})
        else:
            r = c.get(url, params={"purpose": purpose} if purpose else {})
        assert r.status_code == 200, (who, url, r.text[:200])
        reads.append((who, role, purpose, action))

    read("worker", "social_worker", f"/api/v1/families/{pseudonym}")
    read("worker", "social_worker", f"/api/v1/families/{pseudonym}", "case_work")
    read("worker", "social_worker", f"/families/{pseudonym}", "case_work")
    read("supervisor", "supervisor", f"/api/v1/families/{pseudonym}", "case_review")
    read("analyst", "national_analyst", f"/api/v1/families/{pseudonym}", "statistics")
    read("officer", "agency_officer", f"/families/{pseudonym}", "eligibility_check")
    read("auditor", "auditor", f"/api/v1/families/{pseudonym}", "audit_investigation")
    read(
        "worker",
        "social_worker",
        f"/api/v1/families/{pseudonym}/identity",
        "case_work",
        "family.reidentify",
        True,
    )
    read(
        "officer",
        "agency_officer",
        f"/api/v1/families/{pseudonym}/identity",
        "eligibility_check",
        "family.reidentify",
        True,
    )
    read("analyst", "national_analyst", "/api/v1/families", action="family.list")
    with store.transaction() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.seq > before).order_by(AuditEvent.seq)).all()
        got = [r for r in rows if r.action.startswith("family.")]
        members = len(app.state.ctx.snapshot.members(web_nation.family_id))
        seen: list[tuple[str, str, str, str]] = []
        last: tuple[str, str] = ("", "")
        for r in got:
            if r.action != "family.list":
                assert r.subject_family == web_nation.family_id and r.object_id == pseudonym
            if r.action == "family.reidentify" and (r.actor, r.at) == last:
                continue  # the same re-identification: one row for each further member
            last = (r.actor, r.at)
            seen.append((r.actor, r.role, r.purpose, r.action))
        reid_rows = [r for r in got if r.action == "family.reidentify"]
    assert seen == reads
    assert len(reid_rows) == 2 * members  # every member re-identified is a subject of its own row
    result = verify(store)
    assert result.ok, result.reason
