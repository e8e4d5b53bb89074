"""Complaints: the history shown on the customer card (handling arrives with the scheduler issue)."""

from __future__ import annotations

import uuid

from server.complaints.tables import Complaint
from server.values import as_uuid, utc
from shared.enums import ComplaintCategory, ComplaintStatus
from shared.wire import ComplaintOut


async def for_customer(*, customer_id: uuid.UUID) -> list[ComplaintOut]:
    rows = await (
        Complaint.select()
        .where((Complaint.customer_id == customer_id) & Complaint.deleted.eq(False))
        .order_by(Complaint.opened_at, ascending=False)
        .limit(50)
    )
    return [
        ComplaintOut(
            id=as_uuid(r["id"]),
            category=ComplaintCategory(r["category"]),
            status=ComplaintStatus(r["status"]),
            description=r["description"],
            opened_at=utc(r["opened_at"]),
            history_retrieved_at=utc(r["history_retrieved_at"]),
            first_response_at=utc(r["first_response_at"]),
            solved_at=utc(r["solved_at"]),
            callback_at=utc(r["callback_at"]),
            satisfaction=r["satisfaction"],
        )
        for r in rows
    ]
