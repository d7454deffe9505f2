"""Repository hygiene: dependencies pinned, no secrets committed, production refuses unsafe settings."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from familycard.settings import Settings

ROOT = Path(__file__).parents[1]
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "token in URL": re.compile(r"https?://[^/\s:]+:[^@/\s]{6,}@"),
    "long hex secret": re.compile(r"(?i)(?:secret|token|api_key|password)\s*[=:]\s*['\"][0-9a-f]{32,}['\"]"),
}
SECRET_FILES = re.compile(r"(?:\.pem|\.key|\.p12|\.sqlite3?|pseudonym-keys\.json|\.env)$")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_are_pinned() -> None:
    lines = [x.strip() for x in (ROOT / "requirements.lock").read_text().splitlines() if x.strip()]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", x) for x in lines), [
        x for x in lines if "==" not in x
    ]
    locked = {_name(x) for x in lines}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    missing = sorted({_name(x) for x in wanted} - locked)
    assert not missing, f"in pyproject.toml but not pinned in requirements.lock: {missing}"


def test_no_secrets_are_committed() -> None:
    found = []
    for path in _tracked():
        rel = path.relative_to(ROOT).as_posix()
        if SECRET_FILES.search(rel):
            found.append(f"{rel}: a secret's file type")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for what, pattern in SECRET_PATTERNS.items():
            if rel == "tests/test_repository.py":
                continue
            for m in pattern.finditer(text):
                found.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {what}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "COOKIE_SECURE"),
        ({"cookie_secure": True}, "CITIZEN_OIDC"),
        (
            {
                "cookie_secure": True,
                "citizen_oidc": {
                    "issuer": "https://idp.example",
                    "client_id": "dfc",
                    "client_secret": "changeme",
                },
            },
            "placeholder",
        ),
    ],
)
def test_production_refuses_unsafe_settings(env: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Settings(environment="production", **env)  # type: ignore[arg-type]


def test_production_accepts_safe_settings() -> None:
    s = Settings(
        environment="production",
        cookie_secure=True,
        citizen_oidc={
            "issuer": "https://idp.example",
            "client_id": "dfc",
            "client_secret": "s3cr3t-from-vault",
        },  # type: ignore[arg-type]
    )
    assert s.environment == "production"
