"""Cleaning and column mapping of imported customer and order files: pure functions, no database.

Every value that cannot be used raises :class:`Rejected` naming the field and saying why in a
short English sentence (operators see it next to the row); values that merely say "nothing"
(``无``, ``-``, ``N/A`` …) read as empty.

Addresses (:func:`split_address`) are split with a table bundled below. Coverage: all 34
provincial-level divisions with their short forms (``广东`` for 广东省, ``内蒙古`` for 内蒙古自治区,
``香港`` for 香港特别行政区 …); every prefecture-level division (cities, autonomous prefectures,
地区 and 盟) of the 27 provinces and autonomous regions, plus the county-level cities governed
directly by a province (仙桃, 济源, 石河子, 五指山 …) and Taiwan's main cities; every district and
county of 北京, 上海, 天津 and 重庆. Below a city, a district is recognised by its suffix
(区/县/市/旗) and not checked against a list. Development zones and estates that end in 区 but
are no administrative district (苏州工业园区, 高新区, 开发区, 小区 …) give an empty district and stay
in ``rest``: the district column compares equal across records only if it holds real districts.
"""

from __future__ import annotations

import codecs
import datetime as dt
import functools
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec
import phonenumbers
from phonenumbers import PhoneNumberType
from rapidfuzz import fuzz, process

from shared import phones
from shared.enums import Gender, PhoneKind

Kind = Literal["customers", "orders"]


class Rejected(ValueError):
    """A value that cannot be imported: ``field`` is the target field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


# --- text ------------------------------------------------------------------------------------------

# Invisible characters that ride along with copied text; removed before NFKC so that the result
# is already normal (removing them afterwards could join a base and a combining mark).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CJK = r"\u2e80-\u2fff\u3005\u3007\u3021-\u3029\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")

_BLANK_MARKERS = frozenset(
    {"", "无", "没有", "空", "空白", "n/a", "na", "nan", "null", "none", "nil", "暂无", "不详", "未知", "未填", "0"}
)
_PUNCTUATION_ONLY = re.compile(r"[-—–―_/\\.·*?~]+")


def clean_text(value: object) -> str:
    """Text as it should be stored: full-width forms made half-width (NFKC), invisible characters
    dropped, runs of white space one space, no space at either end. ``None`` is ""."""
    if value is None:
        return ""
    if type(value) is str and value.isascii():  # the common case: NFKC leaves ASCII as it is
        return " ".join(value.split()) if value else ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone typed into Excel as a number: 13812345678.0
    text = unicodedata.normalize("NFKC", str(value).translate(_INVISIBLE))
    return " ".join(text.split())


def is_blank_marker(text: str) -> bool:
    """Whether a value means "nothing": empty, 无, 暂无, -, /, N/A, null, 0 …"""
    if not text:
        return True
    return is_blank_text(clean_text(text))


def is_blank_text(text: str) -> bool:
    """:func:`is_blank_marker` of a text already cleaned (:func:`clean_text`)."""
    if not text:
        return True
    key = text.lower()
    return key in _BLANK_MARKERS or _PUNCTUATION_ONLY.fullmatch(key) is not None


# --- names -----------------------------------------------------------------------------------------

_TEST_NAMES = frozenset(
    {
        "test", "tester", "testuser", "test user", "demo", "sample", "abc", "asdf", "qwe", "qwer", "qwerty",
        "xx", "xxx", "测试", "测试客户", "测试用户", "测试会员", "测试账号", "客户", "顾客", "会员", "某某",
        "先生", "女士", "小姐",
    }
)  # fmt: skip


def clean_name(value: object) -> str:
    """A person's name, cleaned ("王 芳" → "王芳"; "Alex Li" stays); placeholders are rejected."""
    if type(value) is str:
        return _clean_name_text(value)  # names recur: cached
    return _clean_name(value)


@functools.lru_cache(maxsize=1 << 18)
def _clean_name_text(value: str) -> str:
    return _clean_name(value)


def _clean_name(value: object) -> str:
    text = _SPACE_BETWEEN_CJK.sub("", clean_text(value))
    if is_blank_marker(text):
        raise Rejected("name", "name is empty")
    if not text.isalpha() and not any(c.isalpha() for c in text):
        raise Rejected("name", f"name has no letters: {text!r}")
    if len(text) > 64:
        raise Rejected("name", f"name is longer than 64 characters ({len(text)})")
    if re.search(r"\d{5}", text):
        raise Rejected("name", f"name contains a long number (a phone in the name column?): {text!r}")
    key = text.lower().rstrip("0123456789 ")
    if key in _TEST_NAMES or key.startswith("测试") or re.fullmatch(r"([a-z])\1{2,}", key):
        raise Rejected("name", f"name is a test or placeholder entry: {text!r}")
    return text


# --- phones ----------------------------------------------------------------------------------------

_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−~"), "-")
_ANNOTATION = re.compile(r"\([^()\d]*\)")  # "(本人)", "(王先生)": a note, not part of the number
_EXTENSION = re.compile(r"[\s\-(]*(?:转|分机|ext\.?|extension|x|#)\s*\d{1,6}\)?$", re.IGNORECASE)
_SEVERAL = re.compile(r"[/,;、|]")
_NOT_PHONE_CHARS = re.compile(r"[^\d+\-\s().]")
_ASCENDING = "01234567890123456789"
_DESCENDING = "98765432109876543210"
_RUNS = frozenset(run[i : i + 8] for run in (_ASCENDING, _DESCENDING) for i in range(len(run) - 7))
_KNOWN_FAKE = frozenset({"13800138000"})  # China Mobile's service line, the favourite made-up number
_NUMBER_KIND = {
    PhoneNumberType.MOBILE: PhoneKind.MOBILE.value,
    PhoneNumberType.FIXED_LINE: PhoneKind.LANDLINE.value,
    # NANP numbers do not say which they are; mobile keeps text messages possible.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.MOBILE.value,
}
_SERVICE_KIND = {
    PhoneNumberType.TOLL_FREE: "a toll-free (800) number",
    PhoneNumberType.SHARED_COST: "a company hotline (400)",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
    PhoneNumberType.PERSONAL_NUMBER: "a forwarding number",
}


def clean_phone(value: object, *, region: str = "CN") -> tuple[str, str, str]:
    """(E.164, national significant number, "mobile" | "landline") of one phone number.

    Takes what people type: full-width digits, spaces, dashes, dots and brackets, "+86"/"0086"/"86"
    before a number, an extension ("转123", "ext 123", dropped), a note in brackets ("(本人)",
    dropped), Hong Kong, Macau and Taiwan numbers with their country code. Without a "+" or "00"
    the number is read as one of ``region``'s.
    """
    if region == "CN" and type(value) is str and (quick := _QUICK_MOBILE.fullmatch(value)):
        # The common case, a Chinese mobile written plainly (13812345678, 138 1234 5678, +86 138…):
        # the same answer as below without the regular expressions and the parse. Anything else,
        # a test number included, takes the long way (which says why it is refused).
        digits = "".join(quick.groups())
        if _cn_mobile_kind(digits[:5]) is not None and not _looks_made_up(digits, PhoneNumberType.MOBILE):
            return "+86" + digits, digits, "mobile"
    text = clean_text(value).translate(_DASHES)
    if is_blank_marker(text):
        raise Rejected("phone", "phone is empty")
    text = _EXTENSION.sub("", _ANNOTATION.sub(" ", text)).strip()
    if _several_numbers(text):
        raise Rejected("phone", f"phone holds more than one number: {text!r}; put the second in another column")
    if _NOT_PHONE_CHARS.search(text):
        raise Rejected("phone", f"phone contains characters other than digits: {text!r}")
    plus = text.lstrip("( ").startswith("+")
    if text.count("+") > plus:
        raise Rejected("phone", f"phone has a + in the middle: {text!r}")
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7:
        raise Rejected("phone", f"phone is too short ({len(digits)} digits): {text!r}")
    if len(digits) > 15:
        raise Rejected("phone", f"phone is too long ({len(digits)} digits): {text!r}")
    if not plus and region == "CN" and len(digits) == 11 and digits[0] == "1":
        # The common case (a Chinese mobile, 11 digits) without parsing: validity and kind depend
        # only on its first five digits (libphonenumber's CN patterns), so they are looked up once.
        kind = _cn_mobile_kind(digits[:5])
        if kind is not None:
            if _looks_made_up(digits, PhoneNumberType.MOBILE):
                raise Rejected("phone", f"phone looks like a test number: {text!r}")
            return "+86" + digits, digits, kind
    if plus:
        candidate = "+" + digits
    elif digits.startswith("00") and digits[2] != "0":  # the international call prefix (no country code starts with 0)
        candidate = "+" + digits[2:]
    elif region == "CN":
        candidate = _cn_candidate(digits, text)
    else:
        candidate = digits
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        raise Rejected("phone", f"not a phone number: {text!r}") from None
    number_type = phonenumbers.number_type(parsed)
    if _looks_made_up(phonenumbers.national_significant_number(parsed), number_type):
        raise Rejected("phone", f"phone looks like a test number: {text!r}")
    try:
        e164, nsn = phones.normalise(candidate, region=region)
    except phones.PhoneError:
        where = phonenumbers.region_code_for_country_code(parsed.country_code)
        raise Rejected("phone", f"not a valid number for {where}: {text!r}") from None
    if number_type in _SERVICE_KIND:
        raise Rejected("phone", f"phone is {_SERVICE_KIND[number_type]}, not a customer's own: {text!r}")
    if number_type not in _NUMBER_KIND:
        raise Rejected("phone", f"phone is neither a mobile nor a landline: {text!r}")
    return e164, nsn, _NUMBER_KIND[number_type]


_QUICK_MOBILE = re.compile(r" *(?:(?:\+|00)?86[ -]?)?(1[0-9]{2})[ -]?([0-9]{4})[ -]?([0-9]{4}) *")
_SEVEN_SAME = re.compile(r"(\d)\1{6}")


@functools.cache
def _cn_mobile_kind(prefix: str) -> str | None:
    """ "mobile" when numbers starting with these five digits are valid Chinese mobiles (the rest
    of the number is free in the numbering plan), else None (the full parse decides)."""
    sample = phonenumbers.parse(prefix + "382917", "CN")
    ok = phonenumbers.is_valid_number(sample) and phonenumbers.number_type(sample) == PhoneNumberType.MOBILE
    return "mobile" if ok else None


def _several_numbers(text: str) -> bool:
    """Whether a cell holds two numbers: "139…/186…", "139…、186…", or two side by side too long
    to be one."""

    def long_chunks(chunks: list[str]) -> int:
        return sum(1 for chunk in chunks if sum(c.isdigit() for c in chunk) >= 7)

    if long_chunks(_SEVERAL.split(text)) > 1:
        return True
    return sum(c.isdigit() for c in text) > 15 and long_chunks(text.split()) > 1


def _cn_candidate(digits: str, text: str) -> str:
    """A number written without "+" or "00", read the way people in China write numbers."""
    if digits.startswith("1"):
        if len(digits) != 11:
            raise Rejected("phone", f"mobile number must have 11 digits, not {len(digits)}: {text!r}")
        return digits
    if digits.startswith("86") and 12 <= len(digits) <= 14:  # 86 138…, 86 10 …, 86 010 …
        return "+" + digits
    if digits.startswith(("852", "853")) and len(digits) == 11:  # Hong Kong, Macau: 8 digits
        return "+" + digits
    if digits.startswith("886") and len(digits) in (11, 12):  # Taiwan: 8 or 9 digits
        return "+" + digits
    if not digits.startswith("0") and len(digits) <= 8:
        raise Rejected("phone", f"landline without area code: {text!r}; add it, e.g. 010 or 021")
    return digits  # with the trunk 0: a landline with its area code (or a mobile written 0138…)


def _looks_made_up(nsn: str, number_type: int) -> bool:
    """Test numbers: well-known fakes, eight digits counting up or down (…12345678), or seven of
    one digit in a row (13888888888, 13800000000). The last is not applied to landlines: companies
    do own numbers like 0755-8888 8888."""
    if nsn in _KNOWN_FAKE:
        return True
    if number_type != PhoneNumberType.FIXED_LINE and _SEVEN_SAME.search(nsn):
        return True
    return any(nsn[i : i + 8] in _RUNS for i in range(len(nsn) - 7))


# --- e-mail ----------------------------------------------------------------------------------------

_EMAIL_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}")
_TEST_DOMAINS = frozenset(
    {"example.com", "example.org", "example.net", "example.cn", "test.com", "test.cn", "localhost.com"}
)


def clean_email(value: object) -> str | None:
    """An e-mail address in lower case, or None when there is none. Typos in the domain
    (qq.con, 163.cm) are rejected or kept as they are, never guessed at."""
    text = clean_text(value).replace("。", ".")
    if is_blank_marker(text):
        return None
    text = re.sub(r"^mailto:", "", text, flags=re.IGNORECASE).lower()
    if " " in text:
        raise Rejected("email", f"email contains a space: {text!r}")
    if "@" not in text:
        raise Rejected("email", f"email has no @: {text!r}")
    if text.count("@") > 1:
        raise Rejected("email", f"email has more than one @: {text!r}")
    if len(text) > 254:
        raise Rejected("email", f"email is longer than 254 characters ({len(text)})")
    if ".." in text:
        raise Rejected("email", f"email has two dots in a row: {text!r}")
    local, domain = text.split("@")
    if not local:
        raise Rejected("email", f"email has nothing before the @: {text!r}")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise Rejected("email", f"email has characters not allowed before the @: {text!r}")
    if "." not in domain:
        raise Rejected("email", f"email domain {domain!r} has no ending like .com or .cn")
    if not _EMAIL_DOMAIN.fullmatch(domain):
        raise Rejected("email", f"email domain {domain!r} is not a valid domain")
    if domain in _TEST_DOMAINS:
        raise Rejected("email", f"email uses the test domain {domain}")
    return text


# --- addresses -------------------------------------------------------------------------------------


class Address(msgspec.Struct, frozen=True):
    """An address split into its administrative parts; ``rest`` is what follows them (the whole
    text when no province or city was recognised). Parts not found are "". The city of 北京, 上海,
    天津, 重庆, 香港 and 澳门 is the province itself, as the stores table has it."""

    province: str = ""
    city: str = ""
    district: str = ""
    rest: str = ""


# Municipalities and SARs → their districts (for them the city is the province itself).
_MUNICIPALITIES = {
    "北京市": "东城区 西城区 朝阳区 丰台区 石景山区 海淀区 门头沟区 房山区 通州区 顺义区 昌平区 大兴区 怀柔区 平谷区 "
    "密云区 延庆区",
    "天津市": "和平区 河东区 河西区 南开区 河北区 红桥区 东丽区 西青区 津南区 北辰区 武清区 宝坻区 滨海新区 宁河区 "
    "静海区 蓟州区",
    "上海市": "黄浦区 徐汇区 长宁区 静安区 普陀区 虹口区 杨浦区 闵行区 宝山区 嘉定区 浦东新区 金山区 松江区 青浦区 "
    "奉贤区 崇明区",
    "重庆市": "万州区 涪陵区 渝中区 大渡口区 江北区 沙坪坝区 九龙坡区 南岸区 北碚区 綦江区 大足区 渝北区 巴南区 黔江区 "
    "长寿区 江津区 合川区 永川区 南川区 璧山区 铜梁区 潼南区 荣昌区 开州区 梁平区 武隆区 城口县 丰都县 垫江县 忠县 "
    "云阳县 奉节县 巫山县 巫溪县 石柱土家族自治县 秀山土家族苗族自治县 酉阳土家族苗族自治县 彭水苗族土家族自治县",
    "香港特别行政区": "中西区 湾仔区 东区 南区 油尖旺区 深水埗区 九龙城区 黄大仙区 观塘区 荃湾区 屯门区 元朗区 北区 "
    "大埔区 西贡区 沙田区 葵青区 离岛区",
    "澳门特别行政区": "",
}
# Provinces and autonomous regions → their prefecture-level divisions. A plain name is a city
# ("广州": 广州市, also written 广州); "full|short" gives a prefecture's short form (凉山); a name
# ending in 自治州, 地区 or 盟 without one is recognised only in full.
_PROVINCE_CITIES = {
    "河北省": "石家庄 唐山 秦皇岛 邯郸 邢台 保定 张家口 承德 沧州 廊坊 衡水",
    "山西省": "太原 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁",
    "内蒙古自治区": "呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布 兴安盟|兴安 "
    "锡林郭勒盟|锡林郭勒 阿拉善盟|阿拉善",
    "辽宁省": "沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛",
    "吉林省": "长春 吉林 四平 辽源 通化 白山 松原 白城 延边朝鲜族自治州|延边",
    "黑龙江省": "哈尔滨 齐齐哈尔 鸡西 鹤岗 双鸭山 大庆 伊春 佳木斯 七台河 牡丹江 黑河 绥化 大兴安岭地区|大兴安岭",
    "江苏省": "南京 无锡 徐州 常州 苏州 南通 连云港 淮安 盐城 扬州 镇江 泰州 宿迁",
    "浙江省": "杭州 宁波 温州 嘉兴 湖州 绍兴 金华 衢州 舟山 台州 丽水",
    "安徽省": "合肥 芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 宣城",
    "福建省": "福州 厦门 莆田 三明 泉州 漳州 南平 龙岩 宁德",
    "江西省": "南昌 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶",
    "山东省": "济南 青岛 淄博 枣庄 东营 烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽",
    "河南省": "郑州 开封 洛阳 平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡 南阳 商丘 信阳 周口 驻马店 济源",
    "湖北省": "武汉 黄石 十堰 宜昌 襄阳 鄂州 荆门 孝感 荆州 黄冈 咸宁 随州 恩施土家族苗族自治州|恩施 仙桃 潜江 "
    "天门 神农架林区|神农架",
    "湖南省": "长沙 株洲 湘潭 衡阳 邵阳 岳阳 常德 张家界 益阳 郴州 永州 怀化 娄底 湘西土家族苗族自治州|湘西",
    "广东省": "广州 深圳 珠海 汕头 佛山 韶关 湛江 肇庆 江门 茂名 惠州 梅州 汕尾 河源 阳江 清远 东莞 中山 潮州 "
    "揭阳 云浮",
    "广西壮族自治区": "南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左",
    "海南省": "海口 三亚 三沙 儋州 五指山 琼海 文昌 万宁 东方",
    "四川省": "成都 自贡 攀枝花 泸州 德阳 绵阳 广元 遂宁 内江 乐山 南充 眉山 宜宾 广安 达州 雅安 巴中 资阳 "
    "阿坝藏族羌族自治州|阿坝 甘孜藏族自治州|甘孜 凉山彝族自治州|凉山",
    "贵州省": "贵阳 六盘水 遵义 安顺 毕节 铜仁 黔西南布依族苗族自治州|黔西南 黔东南苗族侗族自治州|黔东南 "
    "黔南布依族苗族自治州|黔南",
    "云南省": "昆明 曲靖 玉溪 保山 昭通 丽江 普洱 临沧 楚雄彝族自治州|楚雄 红河哈尼族彝族自治州|红河 "
    "文山壮族苗族自治州|文山 西双版纳傣族自治州|西双版纳 大理白族自治州|大理 德宏傣族景颇族自治州|德宏 "
    "怒江傈僳族自治州|怒江 迪庆藏族自治州|迪庆",
    "西藏自治区": "拉萨 日喀则 昌都 林芝 山南 那曲 阿里地区|阿里",
    "陕西省": "西安 铜川 宝鸡 咸阳 渭南 延安 汉中 榆林 安康 商洛",
    "甘肃省": "兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 临夏回族自治州|临夏 甘南藏族自治州|甘南",
    "青海省": "西宁 海东 海北藏族自治州|海北 黄南藏族自治州|黄南 海南藏族自治州 果洛藏族自治州|果洛 "
    "玉树藏族自治州|玉树 海西蒙古族藏族自治州|海西",
    "宁夏回族自治区": "银川 石嘴山 吴忠 固原 中卫",
    "新疆维吾尔自治区": "乌鲁木齐 克拉玛依 吐鲁番 哈密 昌吉回族自治州|昌吉 博尔塔拉蒙古自治州|博尔塔拉 "
    "巴音郭楞蒙古自治州|巴音郭楞 阿克苏地区|阿克苏 克孜勒苏柯尔克孜自治州|克孜勒苏 喀什地区|喀什 和田地区|和田 "
    "伊犁哈萨克自治州|伊犁 塔城地区|塔城 阿勒泰地区|阿勒泰 石河子",
    "台湾省": "台北 新北 桃园 台中 台南 高雄 基隆 新竹 嘉义",
}
_PROVINCE_SHORT = {
    "北京市": "北京", "天津市": "天津", "上海市": "上海", "重庆市": "重庆", "香港特别行政区": "香港",
    "澳门特别行政区": "澳门", "内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏", "新疆维吾尔自治区": "新疆",
}  # fmt: skip
# Longer forms people write besides the full and the short name.
_PROVINCE_EXTRA = {
    "内蒙": "内蒙古自治区", "内蒙古省": "内蒙古自治区", "广西自治区": "广西壮族自治区", "宁夏自治区": "宁夏回族自治区",
    "新疆自治区": "新疆维吾尔自治区", "香港特区": "香港特别行政区", "澳门特区": "澳门特别行政区",
}  # fmt: skip
# A short form followed by one of these is a street or district named after a place
# (南京路, 河北区, 中山路), not the place.
_NOT_AFTER_SHORT = frozenset("区县路街道巷弄号镇乡村")
_ZONE_ENDINGS = (
    "园区", "小区", "社区", "校区", "景区", "片区", "厂区", "新区", "开发区", "高新区", "保税区", "工业区", "商业区",
    "商务区", "老城区", "主城区", "中心区", "市区", "超市", "门市", "夜市", "集市",
)  # fmt: skip
_DISTRICT = re.compile(r".{1,10}?(?:区|县|市|旗)")
_NOT_IN_DISTRICT = re.compile(r"[\d路街道巷弄号镇乡村楼座室栋]")
_NOT_AFTER_DISTRICT = frozenset("路街道巷弄号场")  # 红旗街, 新市场: a street or a market, not a district


def _build_tables() -> tuple[list, dict, dict]:
    provinces: list[tuple[str, str, bool]] = []  # (alias, province, guarded)
    for province in [*_MUNICIPALITIES, *_PROVINCE_CITIES]:
        short = _PROVINCE_SHORT.get(province) or province.removesuffix("省")
        provinces += [(province, province, False), (short, province, True)]
    provinces += [(alias, province, False) for alias, province in _PROVINCE_EXTRA.items()]
    cities: dict[str, list[tuple[str, str, bool]]] = {}  # province → (alias, city, guarded)
    for province, names in _PROVINCE_CITIES.items():
        entries = []
        for name in names.split():
            full, _, short = name.partition("|")
            if not short and not name.endswith(("自治州", "地区", "盟")):
                full, short = name + "市", name
            entries += [(full, full, False)]
            if short:  # "大理市" names a city inside 大理白族自治州: the prefecture is what we keep
                entries += [(short + "市", full, False), (short, full, True)]
        cities[province] = sorted(set(entries), key=lambda e: -len(e[0]))
    # Without a province, a city is recognised by its full name (深圳市, 凉山彝族自治州) only.
    by_full: dict[str, list[tuple[str, str]]] = {}
    for province, entries in cities.items():
        for alias, city, guarded in entries:
            if not guarded:
                by_full.setdefault(alias, []).append((province, city))
    unique = {alias: found[0] for alias, found in sorted(by_full.items(), key=lambda e: -len(e[0])) if len(found) == 1}
    return sorted(set(provinces), key=lambda e: -len(e[0])), cities, unique


_PROVINCE_ALIASES, _CITY_ALIASES, _CITY_BY_FULL_NAME = _build_tables()
_MUNICIPAL_DISTRICTS = {p: sorted(d.split(), key=len, reverse=True) for p, d in _MUNICIPALITIES.items()}
# Full city names by their first character (longest first), so an address is compared with a few.
_CITY_BY_FIRST: dict[str, list[str]] = {}
for _alias in _CITY_BY_FULL_NAME:
    _CITY_BY_FIRST.setdefault(_alias[:1], []).append(_alias)


def _starts(text: str, alias: str, guarded: bool) -> bool:
    """Whether the text starts with the place ``alias`` names (not with 南京路, 中山市场 …)."""
    if not text.startswith(alias):
        return False
    after = text[len(alias) : len(alias) + 2]
    if guarded and (after[:1] in _NOT_AFTER_SHORT or after == "市场"):
        return False
    return not (alias.endswith("市") and after[:1] == "场")


def _match(text: str, aliases: list[tuple[str, str, bool]]) -> tuple[str, str] | None:
    """(matched alias, canonical name) of the longest alias the text starts with."""
    by_first = _BY_FIRST.get(id(aliases))
    if by_first is None:
        by_first = _BY_FIRST[id(aliases)] = {}
        for entry in aliases:  # longest first, as the list is
            by_first.setdefault(entry[0][:1], []).append(entry)
    candidates = by_first.get(text[:1], ())
    return next(((alias, name) for alias, name, guarded in candidates if _starts(text, alias, guarded)), None)


_BY_FIRST: dict[int, dict[str, list[tuple[str, str, bool]]]] = {}  # the alias lists by first character


def _district(text: str) -> str:
    """The district the text starts with, recognised by its suffix; "" when there is none."""
    found = _DISTRICT.match(text)
    if not found:
        return ""
    name = found.group()
    if _NOT_IN_DISTRICT.search(name) or name.endswith(_ZONE_ENDINGS) or text[len(name) :][:1] in _NOT_AFTER_DISTRICT:
        return ""
    if name.endswith("旗") and len(name) < 3:  # banners have long names (达拉特旗); 红旗 is a street's
        return ""
    return name


def split_address(value: object) -> Address:
    """Split a Chinese address into province / city / district / the rest, where the table
    above recognises them: "浙江杭州西湖区文三路" → 浙江省, 杭州市, 西湖区, 文三路."""
    text = _SPACE_BY_CJK.sub("", clean_text(value))
    if is_blank_marker(text):
        return Address()
    body = re.sub(r"^(?:中华人民共和国|中国)", "", text)
    # A full city name first: "吉林市…" is the city of 吉林, not the province followed by "市…"
    by_first = _CITY_BY_FIRST.get(body[:1], ())
    if city_first := next((alias for alias in by_first if _starts(body, alias, False)), None):
        province, city = _CITY_BY_FULL_NAME[city_first]
        body = body[len(city_first) :]
        district = _district(body)
        return Address(province, city, district, _rest(body[len(district) :]))
    matched = _match(body, _PROVINCE_ALIASES)
    if not matched:
        return Address(rest=text)
    province = matched[1]
    body = body[len(matched[0]) :]
    if province in _MUNICIPALITIES:
        # "上海市上海市浦东新区…", "北京北京市市辖区…": forms that ask for province and city twice
        body = re.sub(rf"^(?:{province}|{province.removesuffix('市')})", "", body).removeprefix("市辖区")
        district = next((d for d in _MUNICIPAL_DISTRICTS[province] if body.startswith(d)), "") or _district(body)
        return Address(province, province, district, _rest(body[len(district) :]))
    matched = _match(body, _CITY_ALIASES[province])
    if not matched:
        return Address(province, "", "", _rest(body))
    body = body[len(matched[0]) :]
    district = _district(body)
    return Address(province, matched[1], district, _rest(body[len(district) :]))


def _rest(text: str) -> str:
    return text.lstrip(" ,、-")


# --- column mapping --------------------------------------------------------------------------------


class TargetField(msgspec.Struct, frozen=True):
    """What a mapping UI shows for a field: a line in Chinese and one in English."""

    zh: str
    en: str


_PERSON_FIELDS = {
    "name": TargetField("客户姓名", "Customer's name"),
    "phone": TargetField("手机或电话（主号码）", "Phone, mobile or landline (the main one)"),
    "phone2": TargetField("第二个电话", "A second phone"),
    "email": TargetField("电子邮箱", "E-mail address"),
    "address": TargetField(
        "详细地址（可自动拆分省市区）", "Address (split into province, city, district where possible)"
    ),
    "province": TargetField("省份", "Province"),
    "city": TargetField("城市", "City"),
    "district": TargetField("区县", "District or county"),
    "gender": TargetField("性别", "Gender"),
    "birthday": TargetField("生日", "Birthday"),
    "pos_member_id": TargetField("POS会员号", "POS member number"),
    "online_shop_id": TargetField("网店账号ID", "Online shop account id"),
    "wechat_unionid": TargetField("微信UnionID", "WeChat UnionID"),
    "wechat_openid": TargetField("微信OpenID", "WeChat OpenID"),
    "store_code": TargetField("门店编码", "Home store's code"),
    "owner_username": TargetField("负责导购的账号", "Username of the rep who owns the customer"),
    "notes": TargetField("备注", "Notes"),
    "tags": TargetField("标签（逗号分隔）", "Tags, separated by commas"),
}
_ORDER_FIELDS = {
    "order_ref": TargetField("订单号", "Order number (POS or shop)"),
    "ordered_at": TargetField("下单时间", "Order date and time"),
    "amount": TargetField("订单金额", "Order total"),
    "channel": TargetField("渠道（门店/网店/小程序）", "Channel: store, online, mini program"),
    "payment": TargetField("支付方式", "Payment method"),
    "product_name": TargetField("商品名称", "Product name"),
    "sku": TargetField("商品编码/SKU", "Product code (SKU)"),
    "category": TargetField("品类", "Product category"),
    "quantity": TargetField("数量", "Quantity"),
    "unit_price": TargetField("单价", "Unit price"),
    "line_amount": TargetField("商品小计", "Line total (quantity × unit price)"),
}
TARGET_FIELDS: dict[str, dict[str, TargetField]] = {
    "customers": _PERSON_FIELDS,
    "orders": {**_PERSON_FIELDS, **_ORDER_FIELDS},  # an order row names its customer too
}

# Synonyms of each target field's header, comma-separated; compared after _header_key (case,
# spaces, full-width forms, punctuation and bracketed units ignored).
_PERSON_SYNONYMS = {
    "name": "姓名,客户姓名,名字,客户名,客户名称,客户,联系人,收货人,会员姓名,name,customer name,full name,customer",
    "phone": "手机,手机号,手机号码,电话,电话号码,联系电话,联系方式,移动电话,座机,固话,固定电话,手机1,电话1,mobile,"
    "mobile phone,mobile number,cell,cellphone,phone,phone number,phone1,mobile1,tel,telephone,contact number,landline",
    "phone2": "手机2,电话2,联系电话2,第二电话,备用电话,备用手机,其他电话,phone2,mobile2,second phone,other phone,"
    "alternate phone",
    "email": "邮箱,电子邮件,电子邮箱,邮件,email,e-mail,mail,email address",
    "address": "地址,详细地址,联系地址,家庭地址,住址,收货地址,通讯地址,address,street address,full address",
    "province": "省,省份,所在省,province,state",
    "city": "市,城市,所在城市,city",
    "district": "区,区县,县区,所在区,district,county",
    "gender": "性别,gender,sex",
    "birthday": "生日,出生日期,出生年月日,出生年月,birthday,birth date,date of birth,dob,birthdate",
    "pos_member_id": "会员号,会员卡号,会员编号,会员id,pos会员号,卡号,member id,member no,member number,"
    "membership number,card no,pos member id",
    "online_shop_id": "网店id,淘宝id,天猫id,京东id,网店账号,旺旺,旺旺号,online id,online shop id,shop id,taobao id",
    "wechat_unionid": "微信unionid,unionid,union id",
    "wechat_openid": "openid,微信openid,open id",
    "store_code": "门店,门店编码,门店代码,门店编号,所属门店,store,store code,shop code",
    "owner_username": "导购,顾问,销售顾问,导购员,负责人,归属导购,专属顾问,rep,sales rep,owner,advisor,consultant",
    "notes": "备注,说明,备注信息,notes,note,remark,remarks,comment,comments",
    "tags": "标签,客户标签,tags,tag,labels",
}
_ORDER_SYNONYMS = {
    "order_ref": "订单号,订单编号,单号,小票号,流水号,交易号,order no,order number,order id,order ref,receipt no",
    "ordered_at": "下单时间,下单日期,订单日期,订单时间,成交日期,成交时间,购买日期,购买时间,付款时间,支付时间,日期,"
    "时间,order date,order time,ordered at,date,time,purchase date",
    "amount": "金额,订单金额,实付金额,实付,应付金额,成交金额,总金额,合计,amount,total,order total,order amount,"
    "total amount,paid",
    "channel": "渠道,销售渠道,来源,订单来源,channel,source,sales channel",
    "payment": "支付方式,付款方式,支付,payment,payment method,pay method",
    "product_name": "商品,商品名称,产品,产品名称,品名,product,product name,item,item name",
    "sku": "sku,商品编码,商品编号,货号,产品编码,product code,item code",
    "category": "品类,类别,商品类别,分类,商品分类,category,product category",
    "quantity": "数量,件数,购买数量,qty,quantity",
    "unit_price": "单价,商品单价,销售单价,unit price,price",
    "line_amount": "小计,商品金额,商品小计,行金额,subtotal,line total,line amount",
}
# Words before a field's name that say whose it is: "会员生日", "收货人手机", "customer email".
_HEADER_PREFIXES = ("收货人", "收件人", "联系人", "客户", "顾客", "会员", "用户", "买家", "customer", "client",
                    "member", "buyer")  # fmt: skip


def _header_key(header: str) -> str:
    text = clean_text(header).lower()
    # "金额(元)" → 金额; a header that is all brackets keeps what is inside
    text = re.sub(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】", "", text) or re.sub(r"[()\[\]【】]", "", text)
    text = re.sub(r"[\s_\-./:*#·]", "", text)
    return re.sub(r"(?:必填|选填|required|optional)$", "", text)


def _synonym_keys(kind: str) -> dict[str, str]:
    table = {**_PERSON_SYNONYMS, **(_ORDER_SYNONYMS if kind == "orders" else {})}
    return {_header_key(word): target for target, words in reversed(table.items()) for word in words.split(",")}


_SYNONYM_KEYS = {kind: _synonym_keys(kind) for kind in TARGET_FIELDS}
_ASCII_KEYS = {kind: [key for key in keys if key.isascii()] for kind, keys in _SYNONYM_KEYS.items()}


def suggest_mapping(headers: list[str], kind: Kind) -> dict[str, str | None]:
    """Header → target field (None when nothing fits), from the headers' names in Chinese or
    English. A field is taken once, by the first header that names it; a second phone column
    becomes ``phone2``. A mapping UI shows this as the starting point."""
    if kind not in TARGET_FIELDS:
        raise ValueError(f"kind must be 'customers' or 'orders', not {kind!r}")
    mapping: dict[str, str | None] = {}
    taken: set[str] = set()
    for header in headers:
        if header in mapping:
            continue  # a repeated header: its values cannot be told apart in a header → field mapping
        target = _suggest(header, kind)
        if target == "phone" and "phone" in taken:
            target = "phone2"
        if target in taken:
            target = None
        if target:
            taken.add(target)
        mapping[header] = target
    return mapping


def _suggest(header: str, kind: str) -> str | None:
    keys = _SYNONYM_KEYS[kind]
    key = _header_key(header)
    if not key:
        return None
    if key in keys:
        return keys[key]
    for prefix in _HEADER_PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :] in keys:
            return keys[key[len(prefix) :]]
    if key.isascii() and len(key) >= 6:  # English typos: "adress", "birthdya"
        best = process.extractOne(key, _ASCII_KEYS[kind], scorer=fuzz.ratio, score_cutoff=88)
        if best:
            return keys[best[0]]
    return None


# --- dates -----------------------------------------------------------------------------------------

_TIME = (
    r"(?:[t\s]*(?P<ap1>上午|下午|晚上|am|pm)?\s*(?P<H>\d{1,2})\s*[:时点]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*:?\s*(?P<S>\d{1,2})(?:\.(?P<f>\d{1,6})\d*)?\s*秒?)?\s*(?P<ap2>上午|下午|am|pm)?)?"
    r"\s*(?P<tz>z|[+-]\d{2}:?\d{2})?"
)
_YMD = re.compile(r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?" + _TIME)
_DMY = re.compile(r"(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})" + _TIME)
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
# What spreadsheets and old systems write for "no date": Excel's day 0 and 1, 1900-01-01, 0000-00-00.
_PLACEHOLDER_DAYS = frozenset({dt.date(1899, 12, 30), dt.date(1899, 12, 31), dt.date(1900, 1, 1)})


def parse_datetime(value: object, *, tz: str = "Asia/Shanghai", field: str = "ordered_at") -> dt.datetime | None:
    """An aware datetime (times without an offset are in ``tz``), or None for an empty value or a
    placeholder date (0000-00-00, 1900-01-01). Reads 2024-03-05 14:30[:00], 2024/3/5 下午2:30,
    2024年3月5日 14时30分, ISO 8601 with an offset, 20240305[1430[00]], Unix seconds or
    milliseconds, Excel day numbers (45356.6), 5/3/2024 when day and month cannot be confused."""
    zone = ZoneInfo(tz)
    if isinstance(value, dt.datetime):
        moment = value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(), zone)
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool) and 0 <= value < 2958466:
        moment = _from_excel(float(value), zone)
    else:
        moment = _parse_text(clean_text(value).lower(), zone, field)
    if moment is None or moment.date() in _PLACEHOLDER_DAYS:
        return None
    if not 1900 <= moment.year <= 2100:
        raise Rejected(field, f"{field} year {moment.year} is out of range: {clean_text(value)!r}")
    return moment


def parse_date(value: object, *, field: str = "birthday") -> dt.date | None:
    """A date, read as :func:`parse_datetime` reads it (a time of day is dropped); None for an
    empty value or a placeholder date."""
    if isinstance(value, dt.datetime):
        value = value.date()
    moment = parse_datetime(value, field=field)
    return moment.date() if moment else None


def _from_excel(days: float, zone: ZoneInfo) -> dt.datetime:
    # Excel's day numbers: whole days since 1899-12-30 (Excel's 1900 leap-year bug folded in)
    return (_EXCEL_EPOCH + dt.timedelta(days=days)).replace(microsecond=0, tzinfo=zone)


def _parse_text(text: str, zone: ZoneInfo, field: str) -> dt.datetime | None:
    if is_blank_marker(text) or re.fullmatch(r"0{4}\D0{1,2}\D0{1,2}(?:\s.*)?", text):
        return None
    if text.isdigit() and len(text) in (8, 12, 14):  # 20240305, 202403051430, 20240305143000
        parts = [int(text[i : i + 2] or 0) for i in range(4, 14, 2)]
        return _moment(text, field, zone, int(text[:4]), *parts)
    if text.isdigit() and len(text) in (10, 13):  # Unix time, seconds or milliseconds
        return dt.datetime.fromtimestamp(int(text) / (1000 if len(text) == 13 else 1), tz=zone)
    if re.fullmatch(r"\d{5}(?:\.\d+)?", text):  # an Excel day number that lost its date format in a CSV
        return _from_excel(float(text), zone)
    if found := _YMD.fullmatch(text):
        year, month, day = int(found["y"]), int(found["m"]), int(found["d"])
    elif found := _DMY.fullmatch(text):
        first, second, year = int(found["a"]), int(found["b"]), int(found["y"])
        if first <= 12 and second <= 12 and first != second:
            raise Rejected(field, f"{field} {text!r} could be day/month or month/day; write it as YYYY-MM-DD")
        day, month = (first, second) if first > 12 or first == second else (second, first)
    else:
        raise Rejected(field, f"{field} is not a date: {text!r}")
    hour = int(found["H"] or 0)
    half = found["ap1"] or found["ap2"]
    if half and hour > 12:
        raise Rejected(field, f"{field} has hour {hour} with {half}: {text!r}")
    if half in ("下午", "晚上", "pm") and hour < 12:
        hour += 12
    elif half in ("上午", "am") and hour == 12:
        hour = 0
    micro = int((found["f"] or "0").ljust(6, "0"))
    moment = _moment(text, field, zone, year, month, day, hour, int(found["M"] or 0), int(found["S"] or 0), micro)
    if found["tz"]:
        offset = found["tz"].replace(":", "")
        if offset == "z":
            shift = dt.timedelta(0)
        else:
            shift = (-1 if offset[0] == "-" else 1) * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        moment = moment.replace(tzinfo=dt.timezone(shift)).astimezone(zone)
    return moment


def _moment(text: str, field: str, zone: ZoneInfo, year: int, *rest: int) -> dt.datetime:
    """The datetime of the parts read from ``text`` (month, day, hour, minute, second, microsecond)."""
    if year == 0:
        raise Rejected(field, f"{field} year 0 is out of range: {text!r}")
    try:
        return dt.datetime(year, *rest, tzinfo=zone)
    except ValueError:
        raise Rejected(field, f"{field} is not a real date or time: {text!r}") from None


# --- money, gender ---------------------------------------------------------------------------------

_CENT = Decimal("0.01")
_MONEY_LIMIT = Decimal(100_000_000)
_CURRENCY = re.compile(r"人民币|rmb|cny|¥|元|圆|整")
_MULTIPLIERS = {"万": Decimal(10_000), "w": Decimal(10_000), "千": Decimal(1_000), "k": Decimal(1_000)}


def parse_money(value: object, *, field: str = "amount") -> Decimal:
    """An amount of yuan with two decimals (rounded half up): "¥1,299.00", "1299元", "１２９９",
    "1.2万" → 12000.00. Negative, non-numeric and amounts over 100,000,000 are rejected."""
    shown = clean_text(value)
    if isinstance(value, bool):
        raise Rejected(field, f"{field} is not a number: {shown!r}")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the float's shortest spelling, not its binary expansion
    else:
        text = _CURRENCY.sub("", shown.lower().replace("−", "-")).replace(" ", "")
        if shown != "0" and is_blank_marker(text):
            raise Rejected(field, f"{field} is empty")
        if text.startswith("-") or (text.startswith("(") and text.endswith(")")):
            raise Rejected(field, f"{field} is negative: {shown!r}")
        multiplier = _MULTIPLIERS.get(text[-1:], Decimal(1))
        if multiplier != 1:
            text = text[:-1]
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
            text = text.replace(",", "")
        if not re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", text):
            raise Rejected(field, f"{field} is not a number: {shown!r}")
        number = Decimal(text) * multiplier
    if not number.is_finite():
        raise Rejected(field, f"{field} is not a number: {shown!r}")
    if number < 0:
        raise Rejected(field, f"{field} is negative: {shown!r}")
    if number > _MONEY_LIMIT:
        raise Rejected(field, f"{field} {shown} is over the limit of 100,000,000")
    return number.quantize(_CENT, rounding=ROUND_HALF_UP)


_GENDERS = {
    **dict.fromkeys(("男", "男性", "男士", "先生", "m", "male", "man", "boy"), Gender.MALE),
    **dict.fromkeys(("女", "女性", "女士", "小姐", "太太", "f", "female", "woman", "girl"), Gender.FEMALE),
    **dict.fromkeys(("其他", "其它", "other"), Gender.OTHER),
}


def parse_gender(value: object) -> Gender | None:
    """男/女/先生/女士/M/F/male/female … as a Gender; anything else (保密, 未知, 1) is None, not an error."""
    return _GENDERS.get(clean_text(value).lower())


# --- files -----------------------------------------------------------------------------------------


def decode_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a CSV file's bytes: UTF-8 with or without a BOM, UTF-16 (with a BOM, or
    plain ASCII-range text without one), GB18030 (which GBK files are: Excel's "CSV" on a Chinese
    Windows), else what charset-normalizer finds. A BOM is not part of the text."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return data.decode("utf-32"), "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    if b"\x00" in data[:1000] and len(data) % 2 == 0:  # a CSV has no NUL: UTF-16 without a BOM
        little = data[1::2].count(0) > data[0::2].count(0)
        try:
            return data.decode("utf-16-le" if little else "utf-16-be"), "utf-16-le" if little else "utf-16-be"
        except UnicodeDecodeError:
            pass
    # Strict decoders first, detection last: a detector needs a lot of text, and a file of a few
    # short Chinese names is often called Korean (cp949) or Big5. Chinese GB18030 text is almost
    # never valid UTF-8, while UTF-8 Chinese often decodes as (nonsense) GB18030: UTF-8 goes first.
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise Rejected("file", "the file's text encoding is not recognised; save it as CSV UTF-8 and try again")
    return str(best), best.encoding


__all__ = [
    "TARGET_FIELDS",
    "Address",
    "Rejected",
    "TargetField",
    "clean_email",
    "clean_name",
    "clean_phone",
    "clean_text",
    "decode_bytes",
    "is_blank_marker",
    "parse_date",
    "parse_datetime",
    "parse_gender",
    "parse_money",
    "split_address",
    "suggest_mapping",
]
