"""HTTP: imports (upload, dry run, progress, rejected rows), mapping templates, the review queue of
possible duplicates, and merges (undo). Store managers, regional managers and admins only, each in
their scope; a rep's request answers 403, an id outside the caller's stores 404."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from server.auth.scope import Caller
from server.db import transaction
from server.deps import CallerDep
from server.errors import DomainError, Forbidden, Invalid, NotFound
from server.imports import cleaning, merging, service
from server.imports.tables import ImportJob
from shared import import_reasons
from shared.enums import Role
from shared.ids import uuid7
from shared.wire import NO_NUL

log = logging.getLogger("floorwalker.imports")

MAX_UPLOAD = 200 * 1024 * 1024
Name = Annotated[str, QueryParameter(min_length=1, max_length=200, pattern=NO_NUL)]
Kind = Annotated[str, QueryParameter(pattern="^(customers|orders)$", description="a customer file or an order file")]
_running: set[asyncio.Task] = set()


def _manager(caller: Caller) -> None:
    if caller.role == Role.REP:
        raise Forbidden("imports, merges and the review queue are for store managers and above")


def _job_out(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "kind",
        "source",
        "file_name",
        "encoding",
        "mapping_name",
        "status",
        "total_rows",
        "next_row",
        "created",
        "updated",
        "unchanged",
        "merged",
        "rejected",
        "review",
        "error",
    )
    out = {k: row[k] for k in keys}
    out.update(
        # started from the app (its file kept) and not done: POST /api/imports/{id}/resume goes on with it
        resumable=bool(row.get("kept")) and row["status"] != "done",
        id=str(row["id"]),
        dry_run=bool(row["dry_run"]),
        store_id=str(row["store_id"]) if row["store_id"] else None,
        columns=row["columns"] if isinstance(row["columns"], dict) else json.loads(row["columns"]),
    )
    return out


def _columns(text: str | None) -> dict[str, str | None] | None:
    """The ``columns`` query parameter: a JSON object of header → field (or null: not imported)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        detail = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise Invalid(f"columns is not valid JSON ({detail})", field="columns") from None
    if not isinstance(value, dict) or not value:
        raise Invalid(
            'columns is a JSON object of header → field, e.g. {"姓名": "name", "备注": null}', field="columns"
        )
    wrong = next((h for h, f in value.items() if f is not None and not isinstance(f, str)), None)
    if wrong is not None:
        raise Invalid(f"columns maps header names to field names (or null); {wrong!r} is not", field="columns")
    return value


def _table(data: bytes, file_name: str) -> service.Table:
    """The file read as a table; an unreadable one is the caller's problem (4xx), not a crash."""
    try:
        return service.read_table(data, file_name)
    except cleaning.Rejected as exc:
        raise Invalid(exc.reason, field="file") from None


async def _job_in_scope(caller: Caller, job_id: uuid.UUID) -> dict[str, Any]:
    row = await service.job(job_id)
    if row["store_id"] is not None and not caller.sees(row["store_id"]):
        raise NotFound(f"import {job_id} not found")
    if row["store_id"] is None and not caller.sees_all and str(row["created_by_id"]) != str(caller.user_id):
        raise NotFound(f"import {job_id} not found")
    return row


def _in_background(job: dict[str, Any], table: service.Table, runner: uuid.UUID | None = None) -> None:
    async def work() -> None:
        try:
            await service.run_job(job, table, runner=runner)
        except DomainError as exc:
            log.warning("import %s stopped: %s", job["id"], exc.detail)
        except service.Superseded:
            log.warning("import %s was taken over by another runner", job["id"])
        except Exception:
            log.exception("import %s failed", job["id"])

    task = asyncio.get_running_loop().create_task(work(), name=f"import-{job['id']}")
    _running.add(task)
    task.add_done_callback(_running.discard)


class ImportController(Controller):
    path = "/api/imports"
    tags = ["imports"]

    @post("/preview", status_code=HTTP_200_OK, request_max_body_size=MAX_UPLOAD)
    async def preview(
        self,
        request: Request,
        caller: CallerDep,
        file_name: Name,
        kind: Kind = "customers",
    ) -> dict:
        """The file's headers, the suggested mapping and its first rows (send the file as the body)."""
        _manager(caller)
        data = await request.body()
        table = _table(data, file_name)
        first = [row for _, row in zip(range(10), table.rows, strict=False)]
        return {
            "headers": table.headers,
            "encoding": table.encoding,
            "rows": table.total,
            "sample": first,
            "suggested": cleaning.suggest_mapping(table.headers, kind),
            "fields": cleaning.TARGET_FIELDS[kind],
        }

    @post("/", status_code=HTTP_202_ACCEPTED, request_max_body_size=MAX_UPLOAD)
    async def start(
        self,
        request: Request,
        caller: CallerDep,
        file_name: Name,
        store: Annotated[str | None, QueryParameter(max_length=16, pattern=NO_NUL)] = None,
        mapping: Annotated[str | None, QueryParameter(max_length=64, pattern=NO_NUL)] = None,
        dry_run: Annotated[bool, QueryParameter(description="show what would happen")] = False,
        source: Annotated[str, QueryParameter(pattern="^(pos|online_shop|wechat|call_centre|excel)$")] = "excel",
        kind: Kind = "customers",
        columns: Annotated[
            str | None,
            QueryParameter(
                max_length=20_000,
                pattern=NO_NUL,
                description='the mapping itself instead of a template: JSON {"header": "field" or null}',
            ),
        ] = None,
    ) -> dict:
        """Start importing the file sent as the body; answers at once with the job (poll it). The
        mapping is the template named ``mapping``, or ``columns``, or else suggested from the headers."""
        _manager(caller)
        ad_hoc = _columns(columns)
        if ad_hoc is not None and mapping is not None:
            raise Invalid("give a template name (mapping) or the columns, not both", field="columns")
        if store is None and not caller.sees_all and caller.store_id is not None:
            store = None if caller.store_id is None else await _code_of(caller.store_id)
        if store is not None:
            store_id = (await ImportJob.raw("SELECT id FROM stores WHERE code = {}", store) or [{}])[0].get("id")
            if store_id is None or not caller.sees(store_id):
                raise NotFound(f"store {store} not found")
        data = await request.body()
        if not data:
            raise Invalid("send the file as the request body", field="file")
        try:
            job, table, _ = await service.create_job(
                data, file_name, kind=kind, mapping=mapping, columns=ad_hoc, store_code=store, dry_run=dry_run,
                source=source, created_by=caller.user_id, keep_file=True,
            )  # fmt: skip
        except cleaning.Rejected as exc:  # the file's text cannot be read
            raise Invalid(exc.reason, field="file") from None

        _in_background(job, table)
        return _job_out(await service.job(job["id"]))

    @post("/{job_id:uuid}/resume", status_code=HTTP_202_ACCEPTED)
    async def resume(self, caller: CallerDep, job_id: FromPath[uuid.UUID]) -> dict:
        """Go on with an import started from the app that failed or whose server stopped, from its
        first uncommitted batch (its file is kept until it is done). 409 when it is finished or
        running; 422 when its file was not kept (started from the command line: resume it there)."""
        _manager(caller)
        await _job_in_scope(caller, job_id)
        job, table, runner = await service.claim_to_resume(job_id)
        _in_background(job, table, runner)
        return _job_out(await service.job(job_id))

    @get("/")
    async def list_jobs(
        self, caller: CallerDep, limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20
    ) -> list[dict]:
        """The latest imports into the caller's stores (and their own without a store), newest first."""
        _manager(caller)
        params: list[Any] = []
        scope = caller.store_filter("store_id", params)
        params += [caller.user_id, limit]
        rows = await ImportJob.raw(
            "SELECT *, EXISTS (SELECT 1 FROM import_files f WHERE f.job_id = import_jobs.id) AS kept FROM import_jobs "
            f"WHERE ({scope} OR (store_id IS NULL AND created_by_id = {{}})) "
            "ORDER BY created_at DESC LIMIT {}",
            *params,
        )
        return [_job_out(r) for r in rows]

    @get("/{job_id:uuid}")
    async def get_job(self, caller: CallerDep, job_id: FromPath[uuid.UUID]) -> dict:
        """Progress and counts (created, updated, unchanged, merged, rejected, review)."""
        _manager(caller)
        return _job_out(await _job_in_scope(caller, job_id))

    @get("/{job_id:uuid}/rejected.csv", media_type="text/csv; charset=utf-8")
    async def rejected(self, caller: CallerDep, job_id: FromPath[uuid.UUID]) -> Response:
        """Every rejected row as it was in the file, with its row number and reason."""
        _manager(caller)
        await _job_in_scope(caller, job_id)
        body = await service.rejections_csv(job_id)
        return Response(
            body, media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="rejected-{job_id}.csv"'},
        )  # fmt: skip

    @get("/{job_id:uuid}/rejections")
    async def rejections(
        self,
        caller: CallerDep,
        job_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 20,
    ) -> list[dict]:
        """The first rejected rows (by row number): the field and reason (``reason`` in English,
        ``reason_zh`` in Chinese), and the row as it was in the file (header → value). The whole
        list is rejected.csv."""
        _manager(caller)
        await _job_in_scope(caller, job_id)
        rows = await ImportJob.raw(
            "SELECT row_number, field, reason, raw FROM import_rejections WHERE job_id = {} "
            "ORDER BY row_number LIMIT {}",
            job_id,
            limit,
        )
        return [
            {"row_number": r["row_number"], "field": r["field"], "reason": r["reason"],
             "reason_zh": import_reasons.zh(r["reason"]),
             "raw": r["raw"] if isinstance(r["raw"], dict) else json.loads(r["raw"])}
            for r in rows
        ]  # fmt: skip

    @get("/mappings")
    async def mappings(self, caller: CallerDep) -> list[dict]:
        _manager(caller)
        rows = await ImportJob.raw("SELECT id, name, kind, source, columns FROM import_mappings ORDER BY name")
        return [
            {**{k: r[k] for k in ("name", "kind", "source")}, "id": str(r["id"]),
             "columns": r["columns"] if isinstance(r["columns"], dict) else json.loads(r["columns"])}
            for r in rows
        ]  # fmt: skip

    @put("/mappings/{name:str}")
    async def save_mapping(self, caller: CallerDep, name: FromPath[str], data: JSONBody[dict[str, Any]]) -> dict:
        """Save (or replace) a template: ``{kind, source, columns: {header: field}}``."""
        _manager(caller)
        if not (1 <= len(name) <= 64):
            raise Invalid("a template name has 1 to 64 characters", field="name")
        kind = data.get("kind", "customers")
        columns = data.get("columns")
        if kind not in cleaning.TARGET_FIELDS or not isinstance(columns, dict) or not columns:
            raise Invalid("send {kind: customers, source, columns: {header: field}}", field="columns")
        if any(not isinstance(h, str) or (f is not None and not isinstance(f, str)) for h, f in columns.items()):
            raise Invalid("columns maps header names to field names (or null)", field="columns")
        service.check_mapping(columns, kind)
        now = dt.datetime.now(dt.UTC)
        async with transaction():
            await ImportJob.raw(
                "INSERT INTO import_mappings (id, name, kind, source, columns, created_by_id, created_at, updated_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
                "source = excluded.source, columns = excluded.columns, updated_at = excluded.updated_at",
                uuid7(), name, kind, str(data.get("source", "excel"))[:20], json.dumps(columns, ensure_ascii=False),
                caller.user_id, now, now,
            )  # fmt: skip
        return {"name": name, "kind": kind, "columns": columns}


async def _code_of(store_id: uuid.UUID) -> str | None:
    rows = await ImportJob.raw("SELECT code FROM stores WHERE id = {}", store_id)
    return rows[0]["code"] if rows else None


class MergeController(Controller):
    path = "/api/merges"
    tags = ["imports"]

    @get("/candidates")
    async def candidates(
        self, caller: CallerDep, status: Annotated[str, QueryParameter(pattern="^(open|merged|distinct)$")] = "open"
    ) -> list[dict]:
        """Possible duplicates for a person to decide, best first, in the caller's stores."""
        _manager(caller)
        params: list[Any] = [status]
        rows = await ImportJob.raw(
            "SELECT m.id, m.store_id, m.customer_a, m.customer_b, m.score, m.reasons, m.status, a.name AS name_a, "
            "b.name AS name_b FROM merge_candidates m JOIN customers a ON a.id = m.customer_a "
            "JOIN customers b ON b.id = m.customer_b WHERE m.status = {} AND "
            f"{caller.store_filter('m.store_id', params)} ORDER BY m.score DESC LIMIT 200",
            *params,
        )
        return [
            {"id": str(r["id"]), "store_id": str(r["store_id"]), "customer_a": str(r["customer_a"]),
             "customer_b": str(r["customer_b"]), "name_a": r["name_a"], "name_b": r["name_b"],
             "score": round(float(r["score"]), 3), "status": r["status"],
             "reasons": r["reasons"] if isinstance(r["reasons"], list) else json.loads(r["reasons"])}
            for r in rows
        ]  # fmt: skip

    @post("/candidates/{candidate_id:uuid}", status_code=HTTP_200_OK)
    async def decide(
        self, caller: CallerDep, candidate_id: FromPath[uuid.UUID], data: JSONBody[dict[str, str]]
    ) -> dict:
        """``{decision: merge | distinct, survivor?: customer_a | customer_b}``."""
        _manager(caller)
        decision = data.get("decision")
        if decision not in ("merge", "distinct"):
            raise Invalid("decision is merge or distinct", field="decision")
        async with transaction():
            rows = await ImportJob.raw("SELECT * FROM merge_candidates WHERE id = {}", candidate_id)
            if not rows or not caller.sees(rows[0]["store_id"]):
                raise NotFound(f"candidate {candidate_id} not found")
            row = rows[0]
            if row["status"] != "open":
                raise Invalid(f"this pair was decided already ({row['status']})", field="decision")
            merge_id = None
            if decision == "merge":
                a, b = uuid.UUID(str(row["customer_a"])), uuid.UUID(str(row["customer_b"]))
                survivor, merged = (b, a) if data.get("survivor") == "customer_b" else (a, b)
                reasons = row["reasons"] if isinstance(row["reasons"], list) else json.loads(row["reasons"])
                merge_id = await merging.merge(
                    survivor, merged, decided_by=f"user:{caller.user_id}", score=float(row["score"]), reasons=reasons
                )
            await ImportJob.raw(
                "UPDATE merge_candidates SET status = {}, decided_by_id = {}, decided_at = {}, merge_id = {} "
                "WHERE id = {}",
                "merged" if decision == "merge" else "distinct", caller.user_id, dt.datetime.now(dt.UTC), merge_id,
                candidate_id,
            )  # fmt: skip
        return {"id": str(candidate_id), "status": "merged" if decision == "merge" else "distinct",
                "merge_id": str(merge_id) if merge_id else None}  # fmt: skip

    @post("/{merge_id:uuid}/undo", status_code=HTTP_200_OK)
    async def undo(self, caller: CallerDep, merge_id: FromPath[uuid.UUID]) -> dict:
        """Put both customers back as they were."""
        _manager(caller)
        rows = await ImportJob.raw("SELECT store_id FROM customer_merges WHERE id = {}", merge_id)
        if not rows or not caller.sees(rows[0]["store_id"]):
            raise NotFound(f"merge {merge_id} not found")
        await merging.undo(merge_id, by=f"user:{caller.user_id}")
        return {"id": str(merge_id), "undone": True}
