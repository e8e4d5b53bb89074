"""Why an import row was refused, in Chinese: :func:`zh` turns the short English sentence the server's
cleaning writes (``server/imports/cleaning.py``, ``server/imports/service.py``) into the words a
store manager reads, keeping the value quoted from the file, the numbers and what the field is.

An ordered table of patterns, one per sentence the import can write (the first that matches the
whole reason wins), each with a Chinese template filled from the pattern's named groups: ``value``
(the cell as the reason quotes it, Python's ``repr``), numbers, and words looked up in the tables
below (``field``, ``kind``, ``where``). A reason no pattern knows comes back as it is, in English.
Pure: the server (rejections, rejected.csv) and the app (the import screen) both use it.
"""

from __future__ import annotations

import re

# Target fields as the reasons name them (only those a reason can start with or mention).
FIELDS = {
    "phone": "电话",
    "phone2": "第二个电话",
    "birthday": "生日",
    "ordered_at": "下单时间",
    "amount": "订单金额",
    "line_amount": "商品小计",
    "unit_price": "单价",
    "quantity": "数量",
}
# What a number is when it is no customer's own (cleaning._SERVICE_KIND's words).
SERVICE_KINDS = {
    "a toll-free (800) number": "免费电话（800 号码）",
    "a company hotline (400)": "企业热线（400 号码）",
    "a premium-rate number": "收费声讯号码",
    "a VoIP number": "网络电话号码",
    "a pager number": "寻呼机号码",
    "a company number": "企业统一号码",
    "a voicemail number": "语音信箱号码",
    "a forwarding number": "呼叫转移号码",
}
# Regions a number may be invalid for (libphonenumber's codes); others read "XX 地区".
REGIONS = {
    "CN": "中国大陆",
    "HK": "中国香港",
    "MO": "中国澳门",
    "TW": "中国台湾",
    "US": "北美（+1）",
    "GB": "英国",
    "JP": "日本",
    "KR": "韩国",
    "SG": "新加坡",
    "MY": "马来西亚",
    "TH": "泰国",
    "AU": "澳大利亚",
    "DE": "德国",
    "FR": "法国",
    "001": "国际",
}
_WORDS = {"field": FIELDS, "kind": SERVICE_KINDS, "where": REGIONS}
_FALLBACK = {"where": " {} 地区"}

_VALUE = r"(?P<value>'.*'|\".*\")"  # a cell as repr() quotes it
_PHONE = r"(?P<field>phone2?)"  # clean_row writes "phone2" for the second number's reasons
_NUM = r"-?\d+"


def _alternatives(words: dict[str, str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_FIELD = f"(?P<field>{_alternatives(FIELDS)})"
_KIND = f"(?P<kind>{_alternatives(SERVICE_KINDS)})"

# (pattern, template): the pattern matches a whole reason; the template is str.format'ed with its
# named groups (field/kind/where translated). Order matters where one sentence starts another.
_TABLE: list[tuple[str, str]] = [
    # names
    (r"name is empty", "姓名为空"),
    (rf"name has no letters: {_VALUE}", "姓名里没有文字：{value}"),
    (r"name is longer than (?P<limit>\d+) characters \((?P<n>\d+)\)", "姓名超过 {limit} 个字符（这里有 {n} 个）"),
    (
        rf"name contains a long number \(a phone in the name column\?\): {_VALUE}",
        "姓名里有一长串数字（是不是把电话填到了姓名列？）：{value}",
    ),
    (rf"name is a test or placeholder entry: {_VALUE}", "姓名是测试或占位用的内容：{value}"),
    # phones (the second number's reasons say phone2)
    (
        r"phone is empty \(and no channel identity\): nothing to know the customer by",
        "电话为空，也没有渠道账号（会员号、网店账号、微信）：无法确定是哪位客户",
    ),
    (rf"{_PHONE} is empty", "{field}为空"),
    (
        rf"{_PHONE} holds more than one number: {_VALUE}; put the second in another column",
        "{field}一格里填了不止一个号码：{value}；请把第二个号码放到另一列",
    ),
    (rf"{_PHONE} contains characters other than digits: {_VALUE}", "{field}里有数字以外的字符：{value}"),
    (rf"{_PHONE} has a \+ in the middle: {_VALUE}", "{field}中间有“+”（+ 只能写在最前面）：{value}"),
    (rf"{_PHONE} is too short \((?P<n>\d+) digits\): {_VALUE}", "{field}太短（只有 {n} 位数字）：{value}"),
    (rf"{_PHONE} is too long \((?P<n>\d+) digits\): {_VALUE}", "{field}太长（有 {n} 位数字）：{value}"),
    (rf"{_PHONE} looks like a test number: {_VALUE}", "{field}像是测试用的假号码：{value}"),
    (rf"not a {_PHONE} number: {_VALUE}", "{field}不是有效的号码：{value}"),
    (rf"not a valid number for (?P<where>[A-Z]{{2}}|\d{{3}}): {_VALUE}", "不是有效的{where}号码：{value}"),
    (rf"{_PHONE} is {_KIND}, not a customer's own: {_VALUE}", "{field}是{kind}，不是客户本人的号码：{value}"),
    (rf"{_PHONE} is neither a mobile nor a landline: {_VALUE}", "{field}既不是手机也不是座机：{value}"),
    (
        rf"mobile number must have (?P<want>\d+) digits, not (?P<n>\d+): {_VALUE}",
        "手机号应为 {want} 位，这里是 {n} 位：{value}",
    ),
    (
        rf"landline without area code: {_VALUE}; add it, e\.g\. (?P<a>\d+) or (?P<b>\d+)",
        "座机号缺少区号：{value}；请加上区号，如 {a} 或 {b}",
    ),
    # e-mail
    (rf"email contains a space: {_VALUE}", "邮箱里有空格：{value}"),
    (rf"email has no @: {_VALUE}", "邮箱里没有 @：{value}"),
    (rf"email has more than one @: {_VALUE}", "邮箱里有不止一个 @：{value}"),
    (r"email is longer than (?P<limit>\d+) characters \((?P<n>\d+)\)", "邮箱超过 {limit} 个字符（这里有 {n} 个）"),
    (rf"email has two dots in a row: {_VALUE}", "邮箱里有两个连在一起的点：{value}"),
    (rf"email has nothing before the @: {_VALUE}", "邮箱的 @ 前面是空的：{value}"),
    (rf"email has characters not allowed before the @: {_VALUE}", "邮箱的 @ 前面有不允许的字符：{value}"),
    (
        rf"email domain {_VALUE} has no ending like (?P<a>\.\w+) or (?P<b>\.\w+)",
        "邮箱域名 {value} 缺少 {a}、{b} 这样的后缀",
    ),
    (rf"email domain {_VALUE} is not a valid domain", "邮箱域名 {value} 不是有效的域名"),
    (r"email uses the test domain (?P<domain>\S+)", "邮箱用的是测试域名 {domain}"),
    # dates and times
    (
        rf"{_FIELD} year (?P<year>{_NUM}) is out of range: {_VALUE}",
        "{field}的年份 {year} 超出范围（应在 1900 到 2100 年之间）：{value}",
    ),
    (
        rf"{_FIELD} {_VALUE} could be day/month or month/day; write it as YYYY-MM-DD",
        "{field} {value} 分不清是“日/月”还是“月/日”：请写成 2024-03-05 这样的“年-月-日”",
    ),
    (rf"{_FIELD} is not a date: {_VALUE}", "{field}不是能识别的日期：{value}"),
    (rf"{_FIELD} has hour (?P<hour>\d+) with (?P<half>\S+): {_VALUE}", "{field}里“{half}”和 {hour} 点矛盾：{value}"),
    (rf"{_FIELD} is not a real date or time: {_VALUE}", "{field}不是真实存在的日期或时间：{value}"),
    # money and numbers
    (rf"{_FIELD} is not a number: {_VALUE}", "{field}不是数字：{value}"),
    (rf"{_FIELD} is empty", "{field}为空"),
    (rf"{_FIELD} is negative: {_VALUE}", "{field}是负数：{value}"),
    (
        rf"{_FIELD} (?P<shown>.+) is over the limit of (?P<limit>[\d,]+)",
        "{field} {shown} 超过了上限 {limit} 元",
    ),
    # files
    (
        r"the file's text encoding is not recognised; save it as CSV UTF-8 and try again",
        "无法识别文件的文字编码：请另存为“CSV UTF-8”格式后再试",
    ),
    # order rows
    (r"order number is empty", "订单号为空"),
    (r"order number is longer than (?P<limit>\d+) characters", "订单号超过 {limit} 个字符"),
    (r"order date is empty", "下单时间为空"),
    (r"order date is in the future", "下单时间是将来的日期"),
    (rf"unknown channel {_VALUE}: store, online or mini program", "无法识别的渠道 {value}：应为门店、网店或小程序"),
    (
        rf"unknown payment method {_VALUE}",
        "无法识别的支付方式 {value}（可填：微信、支付宝、银联、刷卡、现金、分期）",
    ),
    (
        rf"quantity must be (?P<low>\d+) to (?P<high>\d+), not (?P<n>{_NUM})",
        "数量应在 {low} 到 {high} 之间，这里是 {n}",
    ),
    (r"neither an amount nor a unit price", "既没有金额也没有单价"),
    (r"no product name and no SKU", "既没有商品名称也没有商品编码（SKU）"),
    # stores, reps, customers (decided against the database)
    (rf"no store with code {_VALUE}", "没有门店编码为 {value} 的门店"),
    (
        r"no store: give a store column or choose the import's store",
        "没有门店：请在文件里加一列门店编码，或为这次导入选择门店",
    ),
    (rf"no rep {_VALUE} in the customer's store", "客户所在的门店没有导购账号 {value}"),
    (
        r"a new customer needs a name \(no one has this phone\)",
        "新客户需要姓名（还没有客户用这个电话）",
    ),
]
PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p, re.DOTALL), t) for p, t in _TABLE]


def _word(group: str, text: str) -> str:
    words = _WORDS.get(group)
    if words is None:
        return text
    if text in words:
        return words[text]
    return _FALLBACK[group].format(text) if group in _FALLBACK else text


def zh(reason: str) -> str:
    """``reason`` (an import refusal, in English) in Simplified Chinese; a reason not in the table
    comes back unchanged."""
    if not isinstance(reason, str) or not reason:
        return reason
    for pattern, template in PATTERNS:
        found = pattern.fullmatch(reason)
        if found:
            try:
                return template.format(**{k: _word(k, v) for k, v in found.groupdict().items() if v is not None})
            except (KeyError, IndexError, ValueError):  # a template naming a group its pattern lacks
                return reason
    return reason


__all__ = ["FIELDS", "PATTERNS", "REGIONS", "SERVICE_KINDS", "zh"]
