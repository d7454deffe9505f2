"""Pages: Jinja2 templates rendered in the request's language; errors in one shape for pages and API."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException

from familycard.web.i18n import LANG_NAMES, LANGS, N_, gettext, translations

__all__ = ["N_", "render", "tr"]

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
CODES = {
    400: "bad_request",
    401: "sign_in",
    403: "forbidden",
    404: "not_found",
    405: "method",
    409: "conflict",
    422: "invalid",
    429: "too_many",
    503: "unavailable",
}


def tr(lang: str, message: str) -> str:
    """``message`` in ``lang`` (the catalogue's translation; English as written)."""
    return gettext(lang, message)


# Codes shown on pages, with their names (translated where shown).
LABELS = {
    "sex": {"F": N_("female"), "M": N_("male")},
    "domain": {
        "economic": N_("economic conditions"),
        "employment": N_("employment"),
        "housing": N_("housing"),
        "health": N_("health and disability"),
        "education": N_("education"),
        "social": N_("social conditions and safety"),
        "gender": N_("gender"),
    },
    # the agencies as the source catalogue names them (familycard/sources/feeds/*.toml)
    "agency": {
        name: name
        for name in (
            N_("Committee on Legal Statistics"),
            N_("Credit bureau and enforcement registry"),
            N_("Local executive bodies (akimats)"),
            N_("Ministry of Agriculture"),
            N_("Ministry of Education (NOBD)"),
            N_("Ministry of Health"),
            N_("Ministry of Internal Affairs (migration service)"),
            N_("Ministry of Internal Affairs"),
            N_("Ministry of Justice (real-estate register)"),
            N_("Ministry of Justice"),
            N_("Ministry of Labour (ESUTD)"),
            N_("Ministry of Labour (Enbek)"),
            N_("Ministry of Labour (medical and social expertise)"),
            N_("Mobile operators"),
            N_("State Centre for Pension Payments"),
            N_("State Revenue Committee"),
            N_("Unified Accumulative Pension Fund"),
        )
    },
}


@cache
def static_version(name: str) -> str:
    """A static file's URL with its content hash, so browsers re-fetch exactly when it changes."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]

    def label(kind: str, code: str | None) -> str:
        names = LABELS.get(kind, {})
        return gettext(lang, names[code]) if code in names else (code or "—")

    env.globals.update(static=static_version, LANGS=LANGS, LANG_NAMES=LANG_NAMES, label=label)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = getattr(request.state, "lang", "kk")
    viewer = getattr(request.state, "viewer", None)
    here = request.url.path + (("?" + request.url.query) if request.url.query else "")
    html = (
        environment(lang)
        .get_template(template)
        .render(lang=lang, viewer=viewer, path=request.url.path, here=here, request=request, **context)
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:  # a language chosen by link is remembered
        response.set_cookie("fc_lang", lang, samesite="lax", max_age=365 * 86400)
    return response


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str) -> Response:
    code = CODES.get(status, "error")
    if wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    if status == 401:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    from familycard.web.deps import get_lang  # the error may come before the language was chosen

    lang = getattr(request.state, "lang", None) or get_lang(request)
    shown = tr(lang, message)  # messages marked with N_ where they are raised have translations
    return render(request, "error.html", status=status, code=code, message=shown, title=tr(lang, "Error"))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, str(exc.detail))


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(x) for x in first.get("loc", ()))
    return error_response(request, 422, f"{where}: {first.get('msg', 'invalid')}")
