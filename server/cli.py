"""The `floorwalker` command line: serve, worker, app, migrate, seed, run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime

os.environ.setdefault("PICCOLO_CONF", "server.piccolo_conf")

from server.settings import Settings, SettingsError

DEMO_LOGINS = [
    ("admin", "管理员 admin"),
    ("region.north", "区域经理 regional manager, north"),
    ("manager.bjcy", "店长 store manager, BJ-CY 北京朝阳"),
    ("rep.bjcy", "导购 rep, BJ-CY"),
    ("rep2.bjcy", "导购 rep, BJ-CY"),
    ("rep.shpd", "导购 rep, SH-PD 上海浦东"),
]
DEMO_PASSWORD = "floorwalker"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floorwalker", description="Floorwalker: sales force app for retail chains")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (on SQLite it also runs the scheduler)")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    sub.add_parser("worker", help="run the scheduler; one of several workers leads at a time")
    app = sub.add_parser("app", help="run the Flet client")
    app.add_argument("--web", action="store_true", help="serve it to a browser on 127.0.0.1")
    app.add_argument("--host", default=None)
    app.add_argument("--port", type=int, default=None, help="port (default 8550)")
    sub.add_parser("migrate", help="bring the database schema up to date")
    seed = sub.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", required=True, help="the demo chain of REQUIREMENTS.md")
    seed.add_argument("--customers", type=_positive, default=None, help="number of customers (default about 600)")
    seed.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep = sub.add_parser("sweep", help="run every enabled rule once now and print what it created")
    sweep.add_argument("--rule", action="append", default=None, help="only this rule (repeatable)")
    sweep.add_argument("--limit", type=int, default=None, help="new tasks per rule at most (0: all; default 5000)")
    sweep.add_argument(
        "--now",
        default=None,
        help="sweep as of this moment (ISO 8601 with offset; default: now), e.g. to re-check a run",
    )
    score = sub.add_parser(
        "score", help="score every customer's segment, RFM and health now (the nightly job, at once)"
    )
    score.add_argument("--store", action="append", default=None, help="only this store code (repeatable)")
    imp = sub.add_parser("import", help="import customers from a CSV or XLSX file")
    imp.add_argument("file", help="the .csv (UTF-8, UTF-8 with BOM or GBK) or .xlsx file")
    imp.add_argument("--mapping", default=None, help="a saved mapping template (default: suggested from the headers)")
    imp.add_argument("--store", default=None, help="the store code for rows without a store column, e.g. BJ-CY")
    imp.add_argument("--source", default="excel", help="pos | online_shop | wechat | call_centre | excel")
    imp.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    imp.add_argument("--resume", default=None, metavar="JOB_ID", help="go on with an import that stopped")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    run = sub.add_parser("run", help="everything on one machine: migrate, demo data, API, scheduler")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    return parser


async def _migrate(settings: Settings) -> None:
    from server.migrate import migrate

    await migrate(settings)


async def _seed(settings: Settings, customers: int | None, progress: bool) -> int:
    from server import seed

    await _migrate(settings)
    if not await seed.database_is_empty():
        print(
            "floorwalker seed: the database already holds data; seed --demo only fills an empty database "
            f"({settings.database_url})",
            file=sys.stderr,
        )
        return 1
    counts = await seed.seed_demo(customers=customers, progress=progress)
    print("seeded: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return 0


async def _serve(settings: Settings, *, host: str, port: int, scheduler: bool, banner: bool, web: bool = False) -> None:
    import uvicorn

    from server.app import create_app
    from server.scheduler import run_as_leader

    # Open event streams (sync pokes) must not hold a stop up: they are cut after 3 s.
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    tasks = []
    if scheduler:
        tasks.append(asyncio.create_task(run_as_leader(settings, stop)))

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        if banner:
            _print_banner(settings, host, port, web)
        # On SIGTERM uvicorn waits for open requests before the lifespan shutdown runs: end the
        # long-lived event streams at once, so stopping is quick and clean.
        while not server.should_exit:  # noqa: ASYNC110 (uvicorn sets a plain flag, no event to wait on)
            await asyncio.sleep(0.1)
        app.state.pokes.end_streams()

    tasks.append(asyncio.create_task(announce()))
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def _print_banner(settings: Settings, host: str, port: int, web: bool = False) -> None:
    url = f"http://{host}:{port}"
    lines = [
        "",
        "Floorwalker is running.",
        f"  API        {url}   (health {url}/health, OpenAPI {url}/schema/openapi.json)",
        f"  database   {settings.database_url}",
        "  scheduler  running in this process",
        f"  web client http://{host}:{settings.web_port}   (the phone app in a browser; phone size: 412×915)"
        if web
        else "  web client not started (floorwalker app --web)",
        "",
        f"Demo logins (password '{DEMO_PASSWORD}'):",
        *(f"  {name:<14} {what}" for name, what in DEMO_LOGINS),
        "",
        "Try:",
        f"  curl -s {url}/api/auth/login -H 'content-type: application/json' "
        f'-d \'{{"username": "rep.bjcy", "password": "{DEMO_PASSWORD}"}}\'',
        "",
        "Stop with Ctrl+C.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def _run(settings: Settings, host: str, port: int) -> int:
    from server import seed

    print(f"migrating {settings.database_url} ...", flush=True)
    await _migrate(settings)
    if await seed.database_is_empty():
        print("empty database: loading the demo chain ...", flush=True)
        await seed.seed_demo(progress=sys.stdout.isatty())
    client = _start_web_client(settings, host, api_port=port)

    def stop_now(signum, frame):  # uvicorn re-raises SIGTERM after its shutdown: end here, cleanly
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_now)
    try:
        await _serve(settings, host=host, port=port, scheduler=True, banner=True, web=client is not None)
    finally:
        if client is not None:
            _stop(client)
    return 0


def _start_web_client(settings: Settings, host: str, *, api_port: int) -> subprocess.Popen | None:
    """The Flet web client as a child process (Flet runs its own event loop), pointed at our API."""
    env = dict(os.environ)
    env.setdefault("FLOORWALKER_SERVER_URL", f"http://{host}:{api_port}")
    command = [sys.executable, "-m", "server.cli", "app", "--web", "--host", host, "--port", str(settings.web_port)]
    try:
        return subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    except OSError as exc:
        print(f"web client did not start: {exc}", file=sys.stderr)
        return None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when `run` dies, however it dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen) -> None:
    """Stop the client and what it started (Flet's server may run children): its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _app(settings: Settings, *, web: bool, host: str, port: int) -> int:
    os.environ.setdefault("FLOORWALKER_SERVER_URL", settings.server_url)
    try:
        from mobile.main import run
    except ImportError as exc:  # flet is the app's dependency, not the server's
        print(f"floorwalker app: the Flet client needs flet ({exc}); pip install -e '.[app]'", file=sys.stderr)
        return 2
    if web:
        print(f"web client on http://{host}:{port} (API {os.environ['FLOORWALKER_SERVER_URL']})", flush=True)
    run(web=web, host=host, port=port)
    return 0


async def _score(settings: Settings, codes: list[str] | None) -> int:
    """The nightly scoring now, for every store or those named; prints what it did as JSON."""
    import json
    import time

    from server import db
    from server.analytics import segments
    from server.stores.tables import Store

    await db.start(settings)
    try:
        stores = None
        if codes:
            rows = await Store.select(Store.code, Store.id).where(Store.code.is_in(codes))
            found = {r["code"]: r["id"] for r in rows}
            unknown = sorted(set(codes) - set(found))
            if unknown:
                print(f"floorwalker score: unknown store {', '.join(unknown)}", file=sys.stderr)
                return 2
            stores = [found[c] for c in codes]
        started = time.perf_counter()
        scored = await segments.score_all(stores=stores)
    finally:
        await db.stop()
    print(json.dumps({"scored": scored, "seconds": round(time.perf_counter() - started, 3)}))
    return 0


async def _sweep(settings: Settings, rules: list[str] | None, limit: int | None, now: str | None = None) -> int:
    import json

    from server import db
    from server.rules.service import MAX_NEW_PER_RULE, SPECS, sweep

    unknown = sorted(set(rules or ()) - set(SPECS))
    if unknown:
        print(
            f"floorwalker sweep: unknown rule {', '.join(unknown)}; rules: {', '.join(sorted(SPECS))}", file=sys.stderr
        )
        return 2
    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            print(f"floorwalker sweep: --now needs an ISO 8601 time with an offset, got {now!r}", file=sys.stderr)
            return 2
    await db.start(settings)
    try:
        result = await sweep(moment, codes=rules, limit=MAX_NEW_PER_RULE if limit is None else max(0, limit))
        if result.total:
            from server.sync import pokes

            await pokes.announce(settings)  # the phones hear of the new tasks now (with Redis)
    finally:
        await db.stop()
    summary = {"created": result.created, "total": result.total, "seconds": round(result.seconds, 3)}
    print(json.dumps({**summary, "more_to_make": result.capped}))
    return 0


async def _import(settings: Settings, args: argparse.Namespace, data: bytes) -> int:
    import json
    import uuid
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from server import db
    from server.errors import DomainError
    from server.imports import service

    path = Path(args.file)
    await db.start(settings)
    bar = Progress(
        TextColumn("导入 import"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
        disable=args.no_progress,
    )
    try:
        with bar:
            task = bar.add_task("rows", total=None, counts="")

            def progress(done: int, total: int, c: service.Counts) -> None:
                counts = f"新建 {c.created} 更新 {c.updated} 合并 {c.merged} 未变 {c.unchanged} 拒绝 {c.rejected}"
                bar.update(task, completed=done, total=total or None, counts=counts)

            if args.resume:
                await service.resume(uuid.UUID(args.resume), data, path.name, progress)
                job = await service.job(uuid.UUID(args.resume))
            else:
                job, _ = await service.import_bytes(
                    data, path.name, mapping=args.mapping, store_code=args.store, dry_run=args.dry_run,
                    source=args.source, progress=progress,
                )  # fmt: skip
        summary = {k: job[k] for k in ("created", "updated", "unchanged", "merged", "rejected", "review")}
        summary.update(job=str(job["id"]), rows=job["total_rows"], dry_run=bool(job["dry_run"]))
        if job["rejected"]:
            rejected = path.with_name(f"{path.stem}.rejected.csv")
            await asyncio.to_thread(rejected.write_text, await service.rejections_csv(job["id"]), encoding="utf-8")
            summary["rejected_file"] = str(rejected)
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    except DomainError as exc:
        print(f"floorwalker import: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        await db.stop()


async def _worker(settings: Settings) -> int:

    from server import db
    from server.scheduler import run_as_leader

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await db.start(settings)
    try:
        await run_as_leader(settings, stop)
    finally:
        await db.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"floorwalker: {exc}", file=sys.stderr)
        return 2
    host = getattr(args, "host", None) or settings.host
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print(f"schema up to date ({settings.database_url})")
        return 0
    if args.command == "seed":
        return asyncio.run(_seed(settings, args.customers, not args.no_progress))
    if args.command == "serve":
        asyncio.run(
            _serve(settings, host=host, port=args.port or settings.api_port, scheduler=settings.is_sqlite, banner=False)
        )
        return 0
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    if args.command == "sweep":
        return asyncio.run(_sweep(settings, args.rule, args.limit, args.now))
    if args.command == "score":
        return asyncio.run(_score(settings, args.store))
    if args.command == "import":
        try:
            data = open(args.file, "rb").read()
        except OSError as exc:
            print(f"floorwalker import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        return asyncio.run(_import(settings, args, data))
    if args.command == "run":
        return asyncio.run(_run(settings, host, args.port or settings.api_port))
    if args.command == "app":
        return _app(settings, web=args.web, host=host, port=args.port or settings.web_port)
    return 2


if __name__ == "__main__":
    sys.exit(main())
