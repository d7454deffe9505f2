"""Commands of the web platform: ``serve``, ``audit verify``, ``accounts add``, ``keys rotate``,
``store upgrade``. Each reads its settings from :class:`familycard.settings.Settings` (``--data``
overrides ``FAMILYCARD_DATA``)."""

from __future__ import annotations

import contextlib
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from familycard.settings import Settings

if TYPE_CHECKING:
    from familycard.security.audit import Access
    from familycard.store.operational import OperationalStore

audit_app = typer.Typer(help="The audit log of accesses to personal data.", no_args_is_help=True)
accounts_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Pseudonym keys.", no_args_is_help=True)
store_app = typer.Typer(help="The operational store.", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option(file_okay=False, help="Warehouse directory.")]


def _out() -> Console:
    return Console(highlight=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", markup=False)
    return typer.Exit(2)


def settings_for(data: Path) -> Settings:
    try:
        return Settings(data=data)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _store(data: Path) -> OperationalStore:
    from familycard.store.operational import StoreError, open_store

    try:
        return open_store(settings_for(data).store)
    except StoreError as exc:
        raise _fail(str(exc)) from None


def cli_access(
    role: str, action: str, object_type: str, object_id: str, family: str = "", **detail: object
) -> Access:
    """The audit record of the person at this terminal doing ``action`` (actor ``cli:<os user>``)."""
    from familycard.security.audit import Access as Record

    return Record(
        actor=f"cli:{getpass.getuser()}", role=role, territory="", purpose="", action=action,
        object_type=object_type, object_id=object_id, subject_family=family, detail=dict(detail),
    )  # fmt: skip


def serve(
    data: DataOpt = Path("data"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web app and the JSON API over the published snapshot of DATA."""
    import uvicorn

    from familycard.store.operational import StoreError
    from familycard.web.app import create_app

    try:
        app = create_app(settings_for(data))
    except StoreError as exc:
        raise _fail(str(exc)) from None
    _out().print(
        f"familycard: http://{host}:{port}/  (API: http://{host}:{port}/api/openapi.json)", soft_wrap=True
    )
    import threading

    from familycard.web.snapshot import NoSnapshot

    def warm() -> None:  # pseudonym maps take a minute at national size: not on the first request
        with contextlib.suppress(NoSnapshot):
            app.state.ctx.snapshot.warm()

    threading.Thread(target=warm, name="warm-pseudonyms", daemon=True).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)


@audit_app.command("verify")
def audit_verify(data: DataOpt = Path("data")) -> None:
    """Walk the audit log's hash chain; name the first row that was altered, removed or reordered."""
    from familycard.security.audit import verify

    result = verify(_store(data))
    if result.ok:
        _out().print(f"audit log intact: {result.rows} rows")
        return
    Console(stderr=True).print(f"audit log broken at row {result.first_bad}: {result.reason}", markup=False)
    raise typer.Exit(1)


@accounts_app.command("add")
def accounts_add(
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="Role (see src policy.toml).")],
    data: DataOpt = Path("data"),
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    territory: Annotated[str, typer.Option(help="KATO prefix (empty: the nation).")] = "",
    measure: Annotated[str | None, typer.Option(help="Support measure (agency officers).")] = None,
) -> None:
    """Create a staff account; the password is asked for (never given on the command line)."""
    from familycard.security.accounts import create_account
    from familycard.security.audit import record
    from familycard.security.passwords import WeakPassword
    from familycard.security.policy import PolicyError

    password = getpass.getpass("password: ")
    store = _store(data)
    try:
        with store.transaction() as db:
            create_account(
                db,
                username=username,
                display_name=name or username,
                role=role,
                territory=territory,
                measure=measure,
                password=password,
            )
            record(db, cli_access("administrator", "account.create", "account", username))
    except (PolicyError, WeakPassword, ValueError) as exc:
        raise _fail(str(exc)) from None
    _out().print(f"account {username} ({role}, territory {territory or 'national'}) created")


@keys_app.command("rotate")
def keys_rotate(
    data: DataOpt = Path("data"),
    retire_older: Annotated[
        bool, typer.Option(help="Retire every earlier version (old pseudonyms stop resolving).")
    ] = False,
) -> None:
    """Start a new pseudonym key version."""
    from familycard.security.audit import record
    from familycard.security.pseudonyms import KeyRing

    settings = settings_for(data)
    ring = KeyRing(settings.secrets)
    store = _store(data)
    with store.transaction() as db:
        version = ring.rotate(retire_older_than=ring.current + 1 if retire_older else None)
        record(db, cli_access("administrator", "keys.rotate", "pseudonym_key", str(version)))
    _out().print(f"pseudonym key version {version} is now current")


@store_app.command("upgrade")
def store_upgrade(data: DataOpt = Path("data")) -> None:
    """Apply the operational store's pending migrations."""
    store = _store(data)
    _out().print(f"operational store ({store.dialect}) at migration {store.revision()}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(audit_app, name="audit")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(keys_app, name="keys")
    app.add_typer(store_app, name="store")


DEMO_ROLES = (
    ("analyst", "national_analyst", 0),
    ("region", "regional_analyst", 2),
    ("worker", "social_worker", 4),
    ("supervisor", "supervisor", 4),
    ("officer", "agency_officer", 0),
    ("auditor", "auditor", 0),
    ("admin", "administrator", 0),
)


def demo_platform(data: Path, console: Console, *, serve: bool, port: int) -> None:
    """Create the demo's accounts (fresh random passwords), print the logins, and serve the web app."""
    import secrets

    from familycard.security.accounts import create_account
    from familycard.store.warehouse import Warehouse
    from familycard.web.snapshot import Snapshot

    settings = settings_for(data)
    store = _store(data)
    scores = (
        Warehouse(data).read("family_scores").sort_by([("score", "descending"), ("family_id", "ascending")])
    )
    top_kato = str(scores.column("kato")[0]) if scores.num_rows else ""
    logins = []
    with store.transaction() as db:
        for username, role, digits in DEMO_ROLES:
            password = secrets.token_urlsafe(12)
            create_account(
                db,
                username=username,
                display_name=f"Demo {role.replace('_', ' ')}",
                role=role,
                territory=top_kato[:digits],
                measure="tsa" if role == "agency_officer" else None,
                password=password,
            )
            logins.append((username, password, role, top_kato[:digits] or "national"))
    console.print()
    console.print("Web app demo logins (new passwords on every demo run):", style="bold")
    for username, password, role, territory in logins:
        console.print(f"  {username:<11} {password}   {role} ({territory})", markup=False)
    if scores.num_rows:
        from familycard.security.pseudonyms import KeyRing

        fid = str(scores.column("family_id")[0])
        people = Snapshot(data, KeyRing(settings.secrets)).identities(fid)
        with_phone = [p for p in people if p["phones"] and p["iin"]]
        if with_phone:
            console.print(
                f"  citizen     IIN {with_phone[0]['iin']}; the one-time code arrives in "
                f"{data / 'outbox' / 'sms.jsonl'}",
                markup=False,
                soft_wrap=True,
            )
    if serve:
        console.print()
        serve_fn = globals()["serve"]
        serve_fn(data=data, host="127.0.0.1", port=port)


def audit_operator(data: Path, action: str, *, object_type: str, object_id: str, **detail: object) -> None:
    """Record in the audit log that an operator read personal data from the command line.

    Commands such as ``export`` and ``explain`` read the warehouse directly; they are audited like the
    web (actor ``cli:<os user>``, role ``operator``), in DATA's operational store."""
    from familycard.security.audit import record

    store = _store(data)
    try:
        with store.transaction() as db:
            family = str(detail.pop("family", ""))
            record(db, cli_access("operator", action, object_type, object_id, family=family, **detail))
    finally:
        store.close()
