"""The import's refusal reasons in Chinese (shared/import_reasons.py). Each refusal is triggered
through the real cleaning (cleaning.clean_phone/clean_name/clean_email/parse_date/parse_money/
decode_bytes, service.clean_row, service.clean_order_row); the few decided against the database
(unknown store, rep, a nameless new customer) are written as the importer writes them. Every
reason reads as Chinese, keeps the quoted value and the numbers; and every place the server writes
a reason (each ``Rejected(`` call, each reason put straight into the rejections) is matched by one
of the reasons here, so a new sentence without a translation fails. Pure: no database."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from phonenumbers import PhoneNumberType

from server.imports import cleaning, service
from shared.import_reasons import FIELDS, REGIONS, SERVICE_KINDS, zh

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "server" / "imports" / "cleaning.py", ROOT / "server" / "imports" / "service.py")
FONT = ROOT / "mobile" / "assets" / "fonts" / "NotoSansSC-Floorwalker.otf"
CJK = re.compile(r"[\u4e00-\u9fff]")
# The value a reason quotes (Python's repr), after a space; not an apostrophe ("customer's").
QUOTED = re.compile(r"(?<=\s)(?:'.*'|\".*\")(?=$|[\s;:])", re.DOTALL)
# ASCII words a Chinese reason may keep: codes and formats people know as they are.
TOKENS = ("SKU", "CSV", "UTF-8", ".com", ".cn")


def refusal(call: Callable[..., object], *args: object, **kwargs: object) -> cleaning.Rejected:
    with pytest.raises(cleaning.Rejected) as caught:
        call(*args, **kwargs)
    return caught.value


def row(**cells: str) -> dict[str, str]:
    """A customer row: a good name and phone unless given."""
    return {"name": "王芳", "phone": "13931720864", **cells}


def order(**cells: str) -> dict[str, str]:
    """An order row: good unless given."""
    return {"order_ref": "SO-1", "ordered_at": "2026-03-01 10:00", "amount": "399", "product_name": "围巾", **cells}


def _no_customer_kinds(monkeypatch) -> cleaning.Rejected:
    """A valid number whose type is neither a mobile nor a landline nor a service (libphonenumber
    has none such today: the branch is reached by forgetting the kinds)."""
    monkeypatch.setattr(cleaning, "_NUMBER_KIND", {})
    return refusal(cleaning.clean_phone, "010 6552 9988")


def _unreadable() -> cleaning.Rejected:
    """Bytes no decoder takes: not UTF-8, not GB18030, nothing charset-normalizer recognises."""
    return refusal(cleaning.decode_bytes, b"\x00\x80\xff")


PHONES = {  # a cell → the branch of clean_phone it reaches
    "empty": "−",  # a minus sign: not blank as a cell, a dash (blank) once the dashes are made one
    "several": "139 3172 0864/186 1234 5670",
    "letters": "138abc",
    "plus": "138+1234",
    "short": "12345",
    "long": "1234567890123456",
    "fake quick": "13800138000",  # a mobile: the short way's test-number check
    "fake": "021 1234 5678",  # a landline, parsed: the long way's
    "unparsable": "+999 1234 5678",
    "invalid": "010 6552 998",
    "invalid HK": "+852 1234",
    "invalid US": "+1 999 555 0199",
    "mobile digits": "1390000",
    "no area code": "6543210",
}
# A number of each kind that is no customer's own (libphonenumber's example numbers).
SERVICE_NUMBERS = {
    PhoneNumberType.TOLL_FREE: "+376 180 01234",
    PhoneNumberType.SHARED_COST: "+971 700012345",
    PhoneNumberType.PREMIUM_RATE: "+376 912345",
    PhoneNumberType.VOIP: "+1 268 480 1234",
    PhoneNumberType.PAGER: "+1 268 406 1234",
    PhoneNumberType.UAN: "+247 542011",
    PhoneNumberType.VOICEMAIL: "+49 17799 1234567",
    PhoneNumberType.PERSONAL_NUMBER: "+1 500 234 5678",
}
NAMES = {"empty": "无", "no letters": "123", "long": "王" * 65, "number": "王芳13912", "test": "测试"}
EMAILS = {
    "space": "a b@qq.com",
    "no @": "abc.qq.com",
    "two @": "a@b@qq.com",
    "long": "a" * 250 + "@qq.com",
    "dots": "a..b@qq.com",
    "no local": "@qq.com",
    "bad local": "a(b@qq.com",
    "no ending": "a@qqcom",
    "bad domain": "a@-qq.com",
    "test domain": "a@example.com",
}
DATES = {
    "range": "2200-01-01",
    "ambiguous": "03/04/2024",
    "not a date": "last week",
    "hour": "2024-03-05 下午15:00",
    "year 0": "0000-03-05",
    "not real": "2024-02-30",
}
MONEY = {
    "bool": True,
    "text": "abc",
    "empty": "无",
    "minus": "-5",
    "nan": float("nan"),
    "below": -3,
    "over": "200000000",
}
ORDERS = {
    "no ref": {"order_ref": "无"},
    "long ref": {"order_ref": "S" * 49},
    "no date": {"ordered_at": ""},
    "future": {"ordered_at": "2099-01-01"},
    "bad date": {"ordered_at": "昨天下午"},
    "channel": {"channel": "电话"},
    "payment": {"payment": "赊账"},
    "quantity text": {"quantity": "两件"},
    "quantity": {"quantity": "0"},
    "unit price": {"unit_price": "-5"},
    "line amount": {"line_amount": "abc"},
    "no amount": {"amount": ""},
    "no product": {"product_name": ""},
}
ROWS = {
    "name": row(name=""),
    "no contact": row(phone=""),
    "email": row(email="abc.qq.com"),
    "birthday": row(birthday="03/04/2024"),
    **{f"phone2 {k}": row(phone2=v) for k, v in PHONES.items()},
    **{f"phone2 kind {k}": row(phone2=v) for k, v in SERVICE_NUMBERS.items()},
}
# Decided against the database (the importer's _batch): the reason as it writes it.
BY_THE_IMPORTER = {
    "unknown store": ("store_code", f"no store with code {'SH-99'!r}"),
    "no store": ("store_code", "no store: give a store column or choose the import's store"),
    "unknown rep": ("owner_username", f"no rep {'rep.sh99'!r} in the customer's store"),
    "nameless new customer": ("name", "a new customer needs a name (no one has this phone)"),
}


def refusals(monkeypatch) -> dict[str, cleaning.Rejected]:
    """Every refusal above, by a name saying which."""
    found: dict[str, cleaning.Rejected] = {}
    for name, value in PHONES.items():
        found[f"phone {name}"] = refusal(cleaning.clean_phone, value)
    for kind, value in SERVICE_NUMBERS.items():
        found[f"phone kind {kind}"] = refusal(cleaning.clean_phone, value)
    for name, value in NAMES.items():
        found[f"name {name}"] = refusal(cleaning.clean_name, value)
    for name, value in EMAILS.items():
        found[f"email {name}"] = refusal(cleaning.clean_email, value)
    for name, value in DATES.items():
        found[f"birthday {name}"] = refusal(cleaning.parse_date, value)
        found[f"ordered_at {name}"] = refusal(cleaning.parse_datetime, value)
    for name, value in MONEY.items():
        found[f"amount {name}"] = refusal(cleaning.parse_money, value)
    for name, cells in ROWS.items():
        found[f"row {name}"] = refusal(service.clean_row, 1, cells)
    for name, cells in ORDERS.items():
        found[f"order {name}"] = refusal(service.clean_order_row, order(**cells), "pos")
    found["file"] = _unreadable()
    for name, (field, reason) in BY_THE_IMPORTER.items():
        found[name] = cleaning.Rejected(field, reason)
    with monkeypatch.context() as patched:
        found["phone no kind"] = _no_customer_kinds(patched)
        found["row phone2 no kind"] = refusal(service.clean_row, 1, row(phone2="010 6552 9988"))
    return found


@pytest.fixture(scope="module")
def reasons() -> dict[str, cleaning.Rejected]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return refusals(monkeypatch)


def test_the_crafted_cells_reach_their_branches(reasons):
    """The inputs above do what their names say (so the refusals below are the ones meant)."""
    fields = {name: r.field for name, r in reasons.items()}
    assert all(fields[f"row phone2 {k}"] == "phone2" for k in PHONES) and fields["row no contact"] == "phone"
    assert reasons["row phone2 short"].reason.startswith("phone2 is too short")
    assert reasons["row phone2 unparsable"].reason.startswith("not a phone2 number")
    assert reasons["row phone2 mobile digits"].reason.startswith("mobile number must have 11 digits")
    kinds = {reasons[f"phone kind {k}"].reason.split(", not")[0].removeprefix("phone is ") for k in SERVICE_NUMBERS}
    assert kinds == set(cleaning._SERVICE_KIND.values()) == set(SERVICE_KINDS)
    assert {fields[f"order {k}"] for k in ORDERS} == {
        "order_ref", "ordered_at", "channel", "payment", "quantity", "unit_price", "line_amount", "amount",
        "product_name",
    }  # fmt: skip
    assert _line(reasons["phone fake quick"]) != _line(reasons["phone fake"])  # two test-number checks
    assert "year 0" in reasons["birthday year 0"].reason and "year 2200" in reasons["birthday range"].reason
    assert reasons["phone no kind"].reason.startswith("phone is neither")
    assert reasons["row phone2 no kind"].field == "phone2"
    assert cleaning.clean_phone("010 6552 9988")[2] == "landline"  # the patch is undone


def _line(exc: BaseException) -> int:
    """The line that raised ``exc``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_lineno if tb else 0


def _kept(reason: str) -> list[str]:
    """What a translation must keep as it is: the quoted value, or the unquoted one a few reasons show."""
    if found := QUOTED.search(reason):
        return [found.group()]
    if found := re.fullmatch(r"email uses the test domain (\S+)", reason):
        return [found.group(1)]
    if found := re.fullmatch(r"\w+ (.+) is over the limit of [\d,]+", reason):
        return [found.group(1)]
    return []


def test_every_reason_reads_as_chinese(reasons):
    for name, refused in reasons.items():
        reason = refused.reason
        chinese = zh(reason)
        assert chinese != reason, (name, reason)
        assert CJK.search(chinese), (name, chinese)
        kept = _kept(reason)
        rest_en, rest_zh = reason, chinese
        for value in kept:
            assert value in chinese, (name, value, chinese)
            rest_en, rest_zh = rest_en.replace(value, " "), rest_zh.replace(value, " ")
        words = rest_zh
        for token in TOKENS:
            words = words.replace(token, " ")
        assert not re.search(r"[A-Za-z]{3,}", words), (name, chinese)
        for number in re.findall(r"(?<![A-Za-z\d])\d+(?:,\d{3})*", rest_en):  # 11 digits, 254 characters, 010 …
            assert number in rest_zh, (name, number, chinese)


def test_the_examples_read_as_a_store_manager_says_them(reasons):
    assert zh("mobile number must have 11 digits, not 7: '1390000'") == "手机号应为 11 位，这里是 7 位：'1390000'"
    assert zh(reasons["row phone2 short"].reason) == "第二个电话太短（只有 5 位数字）：'12345'"
    assert zh(reasons["phone invalid"].reason) == "不是有效的中国大陆号码：'010 6552 998'"
    assert zh(reasons["phone kind 3"].reason).startswith("电话是免费电话（800 号码），不是客户本人的号码")
    assert zh(reasons["order quantity"].reason) == "数量应在 1 到 10000 之间，这里是 0"
    assert zh(reasons["ordered_at hour"].reason) == "下单时间里“下午”和 15 点矛盾：'2024-03-05 下午15:00'"
    assert zh(reasons["unknown store"].reason) == "没有门店编码为 'SH-99' 的门店"
    assert zh(reasons["amount over"].reason) == "订单金额 200000000 超过了上限 100,000,000 元"
    assert zh('email has no @: "it\'s@"') == '邮箱里没有 @："it\'s@"'  # repr's other quotes


def test_an_unknown_reason_comes_back_unchanged():
    for reason in ("the moon is not a store", "", "phone3 is empty", "colour is empty", "no store with code SH-1"):
        assert zh(reason) == reason
    assert zh("not a valid number for IT: '+39 1'") == "不是有效的 IT 地区号码：'+39 1'"  # a region without a name


def _reason_sites() -> list[tuple[str, int, str, ast.expr]]:
    """(file, line, how, reason expression) of every place the import writes a refusal reason: each
    ``Rejected(field, reason)`` call ("raised"), and each reason put straight into ``plan.rejections``
    ("listed")."""
    sites = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "Rejected":
                sites.append((path.name, node.lineno, "raised", node.args[1]))
            elif (
                name == "append"
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "rejections"
                and isinstance(node.args[0], ast.Tuple)
                and isinstance(reason := node.args[0].elts[2], ast.Constant | ast.JoinedStr)
            ):
                sites.append((path.name, node.lineno, "listed", reason))
    return sites


# Reasons made from another reason: what the made ones look like.
DERIVED = {"exc.reason.replace('phone', field, 1)": re.compile(r"(?:.* )?phone2 .*", re.DOTALL)}


def _shape(expr: ast.expr) -> re.Pattern[str]:
    """The sentences a reason expression can make: a string as it is, an f-string with anything
    where its values go."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return re.compile(re.escape(expr.value))
    if isinstance(expr, ast.JoinedStr):
        parts = [re.escape(p.value) if isinstance(p, ast.Constant) else ".+?" for p in expr.values]
        return re.compile("".join(parts), re.DOTALL)
    source = ast.unparse(expr)
    assert source in DERIVED, f"a reason made in a new way: {source} (add its shape to DERIVED)"
    return DERIVED[source]


def test_every_reason_the_import_writes_is_triggered_and_translated(reasons):
    sites = _reason_sites()
    calls = sum(len(re.findall(r"(?<!class )\bRejected\(", path.read_text(encoding="utf-8"))) for path in SOURCES)
    assert len([s for s in sites if s[2] == "raised"]) == calls >= 60  # the scan sees every call
    assert len([s for s in sites if s[2] == "listed"]) >= 1
    written = [r.reason for r in reasons.values()]
    missing = [
        f"{file}:{line}: {ast.unparse(expr)}"
        for file, line, _, expr in sites
        if not any(_shape(expr).fullmatch(reason) for reason in written)
    ]
    assert missing == [], "reasons no test input triggers (add one, and its translation)"
    assert all(zh(reason) != reason for reason in written)


def test_the_word_tables_cover_what_the_reasons_name():
    assert set(SERVICE_KINDS) == set(cleaning._SERVICE_KIND.values())
    money_and_dates = {"birthday", "ordered_at", "amount", "line_amount", "unit_price", "quantity"}
    assert money_and_dates | {"phone", "phone2"} == set(FIELDS)
    for field in FIELDS:
        assert zh(f"{field} is not a number: '?'") == f"{FIELDS[field]}不是数字：'?'"
    assert {"CN", "HK", "MO", "TW"} <= set(REGIONS)


def test_the_app_font_draws_every_chinese_reason(reasons):
    """The app shows these offline with its bundled font subset: no character may lack a glyph."""
    from fontTools.ttLib import TTFont

    font = TTFont(FONT, lazy=True)
    try:
        glyphs = {chr(code) for code in font.getBestCmap()}
    finally:
        font.close()
    written = [zh(r.reason) for r in reasons.values()] + list(SERVICE_KINDS.values()) + list(REGIONS.values())
    missing = {ch for text in written for ch in text if ch not in glyphs and not ch.isspace()}
    assert missing == set()
