"""The repository's boundaries: the phone app never pulls in the server's libraries, `shared/` imports
nothing from `server/`, and services import nothing from Litestar."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_LIBRARIES = {"litestar", "piccolo", "apscheduler", "asyncpg", "aiosqlite", "uvicorn"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_phone_app_dependencies_exclude_server_libraries():
    project = tomllib.loads((ROOT / "mobile" / "pyproject.toml").read_text())["project"]
    names = {
        dep.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for dep in project["dependencies"]
    }
    assert "flet" in names
    assert not names & SERVER_LIBRARIES


def test_shared_and_mobile_import_no_server_code():
    for folder in ("shared", "mobile"):
        for path in (ROOT / folder).rglob("*.py"):
            bad = _imports(path) & (SERVER_LIBRARIES | {"server"})
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_services_do_not_import_litestar():
    for path in (ROOT / "server").glob("*/service.py"):
        assert "litestar" not in _imports(path), f"{path.relative_to(ROOT)} imports litestar"


def test_server_dependencies_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "==" in dep, f"{dep} is not pinned"
