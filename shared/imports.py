"""What an import file's column mapping must hold, so the app can say it while the manager maps the
columns (in their language) before the server refuses it. It states the rule of
``server.imports.service.check_mapping``, in the same order; the server's answer still decides."""

from __future__ import annotations

KINDS = ("customers", "orders")
SOURCES = ("excel", "pos", "online_shop", "wechat", "call_centre")
IDENTITY_FIELDS = ("pos_member_id", "online_shop_id", "wechat_unionid", "wechat_openid")
CONTACT_FIELDS = ("phone", "phone2", *IDENTITY_FIELDS)  # how a row's customer is known
AMOUNT_FIELDS = ("amount", "line_amount", "unit_price")
# What can be wrong (the app's words for each: i18n ``import.problem.<name>``).
PROBLEMS = ("unknown", "twice", "missing", "no_amount", "no_contact")


def mapping_problem(columns: dict[str, str | None], kind: str, fields: list[str]) -> tuple[str, str] | None:
    """The first thing wrong with ``columns`` (header → field, or None: not imported) for a ``kind``
    file, as (problem, field); None when the mapping can be sent. ``fields`` are the fields the
    server takes for that kind (its preview lists them)."""
    mapped = [f for f in columns.values() if f]
    unknown = sorted(set(mapped) - set(fields))
    if unknown:
        return "unknown", unknown[0]
    twice = sorted({f for f in mapped if mapped.count(f) > 1})
    if twice:
        return "twice", twice[0]
    needed = ("order_ref", "ordered_at") if kind == "orders" else ("name",)
    for field in needed:
        if field not in mapped:
            return "missing", field
    if kind == "orders" and not set(AMOUNT_FIELDS) & set(mapped):
        return "no_amount", "amount"
    if not set(CONTACT_FIELDS) & set(mapped):
        return "no_contact", "phone"
    return None
