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


def test_the_packaged_phone_app_imports_without_the_server(tmp_path):
    """scripts/build_phone assembles what `flet build` packages; in a Python that sees only that
    folder (plus the installed libraries), the app's modules import, and no server library or
    `server` module is loaded."""
    import shutil
    import subprocess
    import sys

    build = ROOT / "mobile" / "build" / "app"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build_phone"), "--prepare-only"], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    app = tmp_path / "app"
    shutil.copytree(build, app)
    assert (app / "main.py").exists() and (app / "assets" / "fonts" / "NotoSansSC-Floorwalker.otf").exists()
    probe = (
        "import sys; sys.path = [p for p in sys.path if not p.startswith(sys.argv[2]) or p.endswith('site-packages')];"
        "import mobile.main, mobile.ui.shell, mobile.state;"
        "loaded = {m.split('.')[0] for m in sys.modules};"
        f"bad = loaded & set({sorted(SERVER_LIBRARIES | {'server'})!r});"
        "assert not bad, bad;"
        "assert mobile.main.__file__.startswith(sys.argv[1]), mobile.main.__file__"
    )
    checked = subprocess.run(
        [sys.executable, "-c", probe, str(app), str(ROOT)], cwd=app, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
