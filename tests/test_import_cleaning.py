"""The cleaning and column mapping of imported files (server/imports/cleaning.py): what a messy
export from a POS, an online shop or a rep's spreadsheet turns into, and why a value is refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from server.imports.cleaning import (
    TARGET_FIELDS,
    Address,
    Rejected,
    clean_email,
    clean_name,
    clean_phone,
    clean_text,
    decode_bytes,
    is_blank_marker,
    parse_date,
    parse_datetime,
    parse_gender,
    parse_money,
    split_address,
    suggest_mapping,
)
from shared.enums import Gender

SHANGHAI = ZoneInfo("Asia/Shanghai")
# No example database in the working tree; every run draws afresh.
QUICK = settings(max_examples=150, deadline=None, database=None)


def rejected(call, value, in_field: str, fragment: str, **kwargs) -> None:
    """``call(value, **kwargs)`` rejects the value, naming ``in_field``, with ``fragment`` in the reason."""
    with pytest.raises(Rejected) as caught:
        call(value, **kwargs)
    assert caught.value.field == in_field
    assert fragment in caught.value.reason, caught.value.reason
    assert str(caught.value) == caught.value.reason


# --- text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("  王芳  ", "王芳"),
        ("１３８", "138"),
        ("ＡＢＣ", "ABC"),
        ("张\u3000伟", "张 伟"),
        ("（备注）：ＶＩＰ客户！", "(备注):VIP客户!"),
        ("北京市\t朝阳区\n\n建国路", "北京市 朝阳区 建国路"),
        ("\ufeff姓名\u200b", "姓名"),
        (13812345678.0, "13812345678"),  # a phone typed into Excel as a number
        (1299.5, "1299.5"),
        ("\xa0王\xa0\xa0芳\xa0", "王 芳"),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


@QUICK
@given(st.text())
def test_clean_text_is_idempotent_and_never_raises(text):
    once = clean_text(text)
    assert clean_text(once) == once
    assert once == once.strip()
    assert "  " not in once


@pytest.mark.parametrize(
    "value",
    ["", "  ", "无", "没有", "空", "-", "--", "—", "/", "N/A", "n/a", "NA", "null", "NULL", "none", "None",
     "暂无", "不详", "未知", "0", "　", "－", "---", "?"],
)  # fmt: skip
def test_values_that_mean_nothing(value):
    assert is_blank_marker(value)


@pytest.mark.parametrize("value", ["王芳", "00", "无锡", "NAN YANG", "13952345671", "0571", "a"])
def test_values_that_mean_something(value):
    assert not is_blank_marker(value)


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("王 芳", "王芳"),
        ("  欧阳  娜娜 ", "欧阳娜娜"),
        ("Alex Li", "Alex Li"),
        ("Ｗａｎｇ　Ｆａｎｇ", "Wang Fang"),
        ("李 Alex", "李 Alex"),
        ("阿卜杜拉·买买提", "阿卜杜拉·买买提"),
        ("王先生", "王先生"),  # a surname and a title is how many shops know a customer
        ("陈女士（老客户）", "陈女士(老客户)"),
        ("alex li", "alex li"),  # no title-casing
    ],
)
def test_clean_name(raw, expected):
    assert clean_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "name is empty"),
        (None, "name is empty"),
        ("无", "name is empty"),
        ("-", "name is empty"),
        ("123", "no letters"),
        ("１２３", "no letters"),
        ("???", "name is empty"),
        ("测试", "test or placeholder"),
        ("测试客户", "test or placeholder"),
        ("测试客户2", "test or placeholder"),
        ("test", "test or placeholder"),
        ("Test 01", "test or placeholder"),
        ("aaa", "test or placeholder"),
        ("先生", "test or placeholder"),
        ("王芳13952345671", "long number"),
        ("王" * 65, "longer than 64"),
    ],
)
def test_clean_name_rejects(raw, fragment):
    rejected(clean_name, raw, "name", fragment)


# --- phones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13952345671", ("+8613952345671", "13952345671", "mobile")),
        ("１３９５２３４５６７１", ("+8613952345671", "13952345671", "mobile")),
        ("139 5234 5671", ("+8613952345671", "13952345671", "mobile")),
        ("139-5234-5671", ("+8613952345671", "13952345671", "mobile")),
        ("139.5234.5671", ("+8613952345671", "13952345671", "mobile")),
        ("+86 186-2145-7789", ("+8618621457789", "18621457789", "mobile")),
        ("(+86)186 2145 7789", ("+8618621457789", "18621457789", "mobile")),
        ("0086 18621457789", ("+8618621457789", "18621457789", "mobile")),
        ("86 18621457789", ("+8618621457789", "18621457789", "mobile")),
        ("8618621457789", ("+8618621457789", "18621457789", "mobile")),
        ("＋８６　１５００１８２６６３４", ("+8615001826634", "15001826634", "mobile")),
        ("15001826634（本人）", ("+8615001826634", "15001826634", "mobile")),
        (15001826634.0, ("+8615001826634", "15001826634", "mobile")),
        ("010-6512 3456", ("+861065123456", "1065123456", "landline")),
        ("(010)65123456", ("+861065123456", "1065123456", "landline")),
        ("021 5888 8888", ("+862158888888", "2158888888", "landline")),
        ("0755-8888 8888", ("+8675588888888", "75588888888", "landline")),  # a vanity number, not a test
        ("0571-8765 4329转123", ("+8657187654329", "57187654329", "landline")),
        ("0571-87654329 ext 123", ("+8657187654329", "57187654329", "landline")),
        ("0571—87654329", ("+8657187654329", "57187654329", "landline")),
        ("+86 010 6512 3456", ("+861065123456", "1065123456", "landline")),
        ("+852 9123 4567", ("+85291234567", "91234567", "mobile")),
        ("00852 2123 4567", ("+85221234567", "21234567", "landline")),
        ("852 9123 4567", ("+85291234567", "91234567", "mobile")),
        ("+886 932 517 640", ("+886932517640", "932517640", "mobile")),
        ("+886 2 2758 6010", ("+886227586010", "227586010", "landline")),
    ],
)
def test_clean_phone(raw, expected):
    assert clean_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "phone is empty"),
        ("无", "phone is empty"),
        ("-", "phone is empty"),
        ("6512 3456", "landline without area code"),
        ("87654329", "landline without area code"),
        ("13888888888", "test number"),
        ("13800000000", "test number"),
        ("13000000000", "test number"),
        ("12345678901", "test number"),
        ("13812345678", "test number"),  # the example number of every form
        ("13800138000", "test number"),  # China Mobile's service line
        ("11111111111", "test number"),
        ("1395234567", "must have 11 digits, not 10"),
        ("139523456712", "must have 11 digits, not 12"),
        ("12052345671", "not a valid number for CN"),
        ("0335-572394", "not a valid number for CN"),  # 6 digits after the area code: too few
        ("1234", "too short (4 digits)"),
        ("+86 139 5234 5671 139 5234 5671 1", "too long"),
        ("400-820-8820", "company hotline (400)"),
        ("13952345671/18621457789", "more than one number"),
        ("13952345671，18621457789", "more than one number"),
        ("王先生13952345671", "other than digits"),
        ("139five", "other than digits"),
        ("139+52345671", "+ in the middle"),
    ],
)
def test_clean_phone_rejects(raw, fragment):
    rejected(clean_phone, raw, "phone", fragment)


def test_clean_phone_with_another_default_region():
    assert clean_phone("9123 4567", region="HK") == ("+85291234567", "91234567", "mobile")
    assert clean_phone("+86 139 5234 5671", region="HK") == ("+8613952345671", "13952345671", "mobile")


_FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


@st.composite
def written_mobiles(draw):
    """A CN mobile and the way someone typed it: prefix, grouping, separators, full-width digits."""
    prefix3 = draw(st.sampled_from(["130", "133", "135", "136", "139", "150", "158", "177", "186", "189", "199"]))
    number = prefix3 + draw(st.text("0123456789", min_size=8, max_size=8))
    country = draw(st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "0086 ", "86", "86 ", "(+86)", "(+86) "]))
    sep = draw(st.sampled_from(["", " ", "-", ".", "  ", " - "]))
    grouping = draw(st.sampled_from([(3, 4, 4), (3, 8), (11,), (3, 3, 5), (7, 4)]))
    groups, at = [], 0
    for size in grouping:
        groups.append(number[at : at + size])
        at += size
    written = country + sep.join(groups)
    if draw(st.booleans()):
        written = written.translate(_FULL_WIDTH)
    padding = draw(st.sampled_from(["", " ", "\u3000", "\t"]))
    return number, padding + written + padding


@QUICK
@given(written_mobiles())
def test_a_mobile_however_written_is_one_number(case):
    number, written = case
    try:
        expected = clean_phone(number)
    except Rejected as exc:  # a random draw may be a test pattern (seven 8s in a row) or unassigned
        rejected(clean_phone, written, "phone", exc.reason.split(":")[0])
        return
    assert expected == ("+86" + number, number, "mobile")
    assert clean_phone(written) == expected


# --- e-mail ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wang.Fang@QQ.com", "wang.fang@qq.com"),
        ("  li_na@163.COM ", "li_na@163.com"),
        ("ｗａｎｇｆａｎｇ＠１６３．ｃｏｍ", "wangfang@163.com"),
        ("mailto:chen.jie@sina.com.cn", "chen.jie@sina.com.cn"),
        ("zhang+vip@foxmail.com", "zhang+vip@foxmail.com"),
        ("li@126。com", "li@126.com"),
        ("无", None),
        ("", None),
        (None, None),
    ],
)
def test_clean_email(raw, expected):
    assert clean_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("wangfang163.com", "no @"),
        ("wang@@163.com", "more than one @"),
        ("wang@fang@163.com", "more than one @"),
        ("wang fang@163.com", "contains a space"),
        ("wang@163", "no ending like .com"),
        ("wang@163.c", "not a valid domain"),
        ("wang@163..com", "two dots in a row"),
        ("wang..fang@163.com", "two dots in a row"),
        ("@163.com", "nothing before the @"),
        ("王芳@qq.com", "not allowed before the @"),
        ("wang@-163.com", "not a valid domain"),
        ("wang@example.com", "test domain example.com"),
        ("wang@test.com", "test domain test.com"),
        ("w" * 250 + "@qq.com", "longer than 254"),
        ("wang@qq.c0m", "not a valid domain"),
    ],
)
def test_clean_email_rejects(raw, fragment):
    rejected(clean_email, raw, "email", fragment)


def test_clean_email_does_not_guess_at_typo_domains():
    assert clean_email("wang@qq.con") == "wang@qq.con"  # a typo, kept as written: a person decides


# --- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("北京市朝阳区建国路88号", ("北京市", "北京市", "朝阳区", "建国路88号")),
        ("上海浦东新区世纪大道100号", ("上海市", "上海市", "浦东新区", "世纪大道100号")),
        ("广东省深圳市南山区科技园", ("广东省", "深圳市", "南山区", "科技园")),
        ("浙江杭州西湖区文三路", ("浙江省", "杭州市", "西湖区", "文三路")),
        # a development zone is no administrative district: it stays in the rest
        ("江苏省苏州市工业园区星湖街328号", ("江苏省", "苏州市", "", "工业园区星湖街328号")),
        ("江苏省苏州市昆山市花桥镇", ("江苏省", "苏州市", "昆山市", "花桥镇")),
        ("北京 朝阳区 建国路 88号", ("北京市", "北京市", "朝阳区", "建国路88号")),
        ("上海市上海市徐汇区漕溪北路", ("上海市", "上海市", "徐汇区", "漕溪北路")),
        ("天津河北区中山路", ("天津市", "天津市", "河北区", "中山路")),
        ("重庆市石柱土家族自治县南宾镇", ("重庆市", "重庆市", "石柱土家族自治县", "南宾镇")),
        ("深圳市福田区深南大道", ("广东省", "深圳市", "福田区", "深南大道")),
        ("吉林市船营区", ("吉林省", "吉林市", "船营区", "")),
        ("中国广东省广州市天河区体育西路", ("广东省", "广州市", "天河区", "体育西路")),
        ("山东省青岛市市南区香港中路", ("山东省", "青岛市", "市南区", "香港中路")),
        ("内蒙古鄂尔多斯市东胜区", ("内蒙古自治区", "鄂尔多斯市", "东胜区", "")),
        ("广西壮族自治区南宁市青秀区民族大道", ("广西壮族自治区", "南宁市", "青秀区", "民族大道")),
        ("四川凉山彝族自治州西昌市", ("四川省", "凉山彝族自治州", "西昌市", "")),
        ("香港特别行政区油尖旺区弥敦道", ("香港特别行政区", "香港特别行政区", "油尖旺区", "弥敦道")),
        ("浙江省温州市", ("浙江省", "温州市", "", "")),
        ("江苏昆山花桥镇", ("江苏省", "", "", "昆山花桥镇")),  # 昆山 is no prefecture: city unknown
        ("长春市红旗街", ("吉林省", "长春市", "", "红旗街")),
        ("杭州市华联超市", ("浙江省", "杭州市", "", "华联超市")),
        # a street named after a province or city is not that place
        ("南京路100号", ("", "", "", "南京路100号")),
        ("河北区中山路", ("", "", "", "河北区中山路")),
        ("火星基地1号", ("", "", "", "火星基地1号")),
        ("无", ("", "", "", "")),
        (None, ("", "", "", "")),
    ],
)
def test_split_address(raw, expected):
    address = split_address(raw)
    assert isinstance(address, Address)
    assert (address.province, address.city, address.district, address.rest) == expected


def test_every_provincial_level_division_is_known():
    names = [
        "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
        "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
        "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
    ]  # fmt: skip
    provinces = {split_address(name + "某某路1号").province for name in names}
    assert len(provinces) == 34 and "" not in provinces


@pytest.mark.parametrize(
    "capital",
    ["石家庄", "太原", "沈阳", "长春", "哈尔滨", "南京", "杭州", "合肥", "福州", "南昌", "济南", "郑州", "武汉",
     "长沙", "广州", "海口", "成都", "贵阳", "昆明", "西安", "兰州", "西宁", "台北", "呼和浩特", "南宁", "拉萨",
     "银川", "乌鲁木齐"],
)  # fmt: skip
def test_every_provincial_capital_is_known(capital):
    address = split_address(capital + "市某某区人民路1号")
    assert address.province and address.city == capital + "市" and address.district == "某某区"


# --- column mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("姓名", "name"), ("客户姓名", "name"), ("名字", "name"), ("Customer Name", "name"), ("*姓名", "name"),
        ("手机", "phone"), ("手机号码", "phone"), ("联系电话", "phone"), ("Mobile", "phone"), ("TEL", "phone"),
        ("ｐｈｏｎｅ", "phone"), ("收货人手机", "phone"), ("备用电话", "phone2"),
        ("邮箱", "email"), ("电子邮件", "email"), ("E-mail", "email"),
        ("详细地址", "address"), ("Address", "address"), ("Adress", "address"),
        ("省份", "province"), ("城市", "city"), ("区/县", "district"), ("性别", "gender"),
        ("出生日期", "birthday"), ("会员生日", "birthday"), ("Birthday", "birthday"),
        ("POS会员号", "pos_member_id"), ("会员卡号", "pos_member_id"), ("Member ID", "pos_member_id"),
        ("淘宝ID", "online_shop_id"), ("微信UnionID", "wechat_unionid"), ("openid", "wechat_openid"),
        ("门店编码", "store_code"), ("导购", "owner_username"), ("Owner", "owner_username"),
        ("备注", "notes"), ("标签", "tags"), ("电话(必填)", "phone"),
        ("订单号", None), ("金额", None), ("入会日期", None), ("", None),
    ],
)  # fmt: skip
def test_suggest_a_customer_column(header, target):
    assert suggest_mapping([header], "customers") == {header: target}


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("订单号", "order_ref"), ("Order No.", "order_ref"), ("order id", "order_ref"),
        ("下单时间", "ordered_at"), ("订单日期", "ordered_at"), ("Order Date", "ordered_at"),
        ("实付金额(元)", "amount"), ("订单金额", "amount"), ("Total", "amount"), ("渠道", "channel"),
        ("支付方式", "payment"), ("商品名称", "product_name"), ("SKU", "sku"), ("商品编码", "sku"),
        ("品类", "category"), ("类别", "category"), ("数量", "quantity"), ("Qty", "quantity"),
        ("单价（元）", "unit_price"), ("Unit Price", "unit_price"), ("客户姓名", "name"), ("手机号", "phone"),
    ],
)  # fmt: skip
def test_suggest_an_order_column(header, target):
    assert suggest_mapping([header], "orders") == {header: target}


def test_suggest_mapping_takes_each_field_once():
    headers = ["姓名", "手机", "座机", "电话3", "联系人", "会员卡号", "会员号", "未知列"]
    assert suggest_mapping(headers, "customers") == {
        "姓名": "name",
        "手机": "phone",
        "座机": "phone2",  # the second phone column
        "电话3": None,
        "联系人": None,  # name is taken by the first
        "会员卡号": "pos_member_id",
        "会员号": None,
        "未知列": None,
    }


def test_suggest_mapping_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="customers"):
        suggest_mapping(["姓名"], "stores")  # type: ignore[arg-type]


def test_target_fields_describe_every_suggestion():
    every_header = ["姓名", "手机", "电话", "邮箱", "地址", "省", "市", "区", "性别", "生日", "会员号", "网店ID",
                    "unionid", "openid", "门店", "导购", "备注", "标签", "订单号", "下单时间", "金额", "渠道",
                    "支付方式", "商品", "SKU", "品类", "数量", "单价", "小计"]  # fmt: skip
    assert set(TARGET_FIELDS["customers"]) < set(TARGET_FIELDS["orders"])
    for kind, fields in TARGET_FIELDS.items():
        for name, described in fields.items():
            assert described.zh and described.en, name
        assert set(suggest_mapping(every_header, kind).values()) - {None} <= set(fields)
    # every order field has a header that suggests it, and no two headers share one
    assert set(suggest_mapping(every_header, "orders").values()) == set(TARGET_FIELDS["orders"])


# --- dates, money, gender --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05 14:30:00", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("2024-03-05 14:30", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("2024/3/5 下午2:30", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("2024/3/5 上午12:15", dt.datetime(2024, 3, 5, 0, 15, tzinfo=SHANGHAI)),
        ("2024年3月5日 14时30分", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("２０２４－０３－０５", dt.datetime(2024, 3, 5, tzinfo=SHANGHAI)),
        ("2024-03-05T06:30:00Z", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("2024-03-05T14:30:00+08:00", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("20240305143000", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("20240305", dt.datetime(2024, 3, 5, tzinfo=SHANGHAI)),
        ("1709620200", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),  # Unix seconds
        ("1709620200000", dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),  # Unix milliseconds
        (45356.6, dt.datetime(2024, 3, 5, 14, 24, tzinfo=SHANGHAI)),  # an Excel day number
        (dt.datetime(2024, 3, 5, 14, 30), dt.datetime(2024, 3, 5, 14, 30, tzinfo=SHANGHAI)),
        ("25/12/2024 10:00", dt.datetime(2024, 12, 25, 10, tzinfo=SHANGHAI)),
        ("无", None),
        ("", None),
        ("0000-00-00 00:00:00", None),
    ],
)
def test_parse_datetime(raw, expected):
    parsed = parse_datetime(raw)
    assert parsed == expected
    if parsed:
        assert parsed.utcoffset() == dt.timedelta(hours=8)


def test_parse_datetime_in_another_zone():
    assert parse_datetime("2024-03-05 14:30", tz="Asia/Hong_Kong").tzinfo == ZoneInfo("Asia/Hong_Kong")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("2024-02-30", "not a real date"),
        ("2024-03-05 25:00", "not a real date or time"),
        ("2024-13-01", "not a real date"),
        ("03/05/2024", "could be day/month or month/day"),
        ("昨天", "not a date"),
        ("1850-01-01", "year 1850 is out of range"),
        ("2024/3/5 下午14:30", "hour 14 with 下午"),
    ],
)
def test_parse_datetime_rejects(raw, fragment):
    rejected(parse_datetime, raw, "ordered_at", fragment)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1990-05-03", dt.date(1990, 5, 3)),
        ("1990/5/3", dt.date(1990, 5, 3)),
        ("1990年5月3日", dt.date(1990, 5, 3)),
        ("1990.05.03", dt.date(1990, 5, 3)),
        ("19900503", dt.date(1990, 5, 3)),
        ("1990-05-03 00:00:00", dt.date(1990, 5, 3)),  # how service.read_table writes an XLSX date
        ("25/12/1990", dt.date(1990, 12, 25)),
        ("12/25/1990", dt.date(1990, 12, 25)),
        (dt.date(1990, 5, 3), dt.date(1990, 5, 3)),
        ("1900-01-01", None),  # what old systems store for "unknown"
        ("0000-00-00", None),
        ("无", None),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


def test_parse_date_names_the_field():
    rejected(parse_date, "1990-02-30", "birthday", "birthday is not a real date")
    rejected(parse_date, "02/03/1990", "birthday", "YYYY-MM-DD")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("¥1,299.00", Decimal("1299.00")),
        ("￥1,299.00", Decimal("1299.00")),
        ("1299元", Decimal("1299.00")),
        ("１２９９", Decimal("1299.00")),
        ("1.2万", Decimal("12000.00")),
        ("3.5万元", Decimal("35000.00")),
        ("RMB 99.9", Decimal("99.90")),
        ("8,680.5", Decimal("8680.50")),
        ("0", Decimal("0.00")),
        (1299.99, Decimal("1299.99")),
        (0.1 + 0.2, Decimal("0.30")),
        (4999, Decimal("4999.00")),
        ("100000000", Decimal("100000000.00")),
    ],
)
def test_parse_money(raw, expected):
    assert parse_money(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("-100", "amount is negative"),
        ("－１００", "amount is negative"),
        ("(100)", "amount is negative"),
        ("abc", "amount is not a number"),
        ("1,29", "amount is not a number"),
        ("12.3.4", "amount is not a number"),
        ("", "amount is empty"),
        ("无", "amount is empty"),
        ("100000001", "over the limit of 100,000,000"),
        ("2亿", "amount is not a number"),
        (float("nan"), "amount is not a number"),
    ],
)
def test_parse_money_rejects(raw, fragment):
    rejected(parse_money, raw, "amount", fragment)


def test_parse_money_names_the_field():
    rejected(parse_money, "十元", "unit_price", "unit_price is not a number", field="unit_price")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", Gender.MALE), ("女", Gender.FEMALE), ("M", Gender.MALE), ("f", Gender.FEMALE),
        ("Male", Gender.MALE), ("FEMALE", Gender.FEMALE), ("先生", Gender.MALE), ("女士", Gender.FEMALE),
        ("小姐", Gender.FEMALE), ("男性", Gender.MALE), ("其他", Gender.OTHER), ("保密", None), ("未知", None),
        ("1", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_parse_gender(raw, expected):
    assert parse_gender(raw) == expected


# --- files -----------------------------------------------------------------------------------------

NAMES_CSV = (
    "姓名,手机,地址\r\n"
    "王芳,139 5234 5671,北京市朝阳区建国路88号\r\n"
    "李娜,１８６２１４５７７８９,上海浦东新区世纪大道100号\r\n"
)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (NAMES_CSV.encode("utf-8"), "utf-8"),
        (NAMES_CSV.encode("utf-8-sig"), "utf-8-sig"),
        (NAMES_CSV.encode("gbk"), "gb18030"),  # Excel's "CSV" on a Chinese Windows
        (NAMES_CSV.encode("gb18030"), "gb18030"),
        (NAMES_CSV.encode("utf-16"), "utf-16"),  # Excel's "Unicode text"
        (b"", "utf-8"),
    ],
)
def test_decode_bytes(data, encoding):
    text, found = decode_bytes(data)
    assert found == encoding
    assert text == (NAMES_CSV if data else "")


def test_decode_bytes_falls_back_to_detection():
    data = "Müller,café,Größe\n".encode("latin-1")  # not UTF-8, not GB18030 (ends in a lone lead byte)
    text, encoding = decode_bytes(data + "é".encode("latin-1"))
    assert "Müller" in text and encoding


def test_a_messy_gbk_export_reads_and_cleans():
    text, encoding = decode_bytes(NAMES_CSV.encode("gbk"))
    rows = list(csv.reader(io.StringIO(text)))
    mapping = suggest_mapping(rows[0], "customers")
    assert encoding == "gb18030" and mapping == {"姓名": "name", "手机": "phone", "地址": "address"}
    cleaned = [(clean_name(r[0]), clean_phone(r[1])[0], split_address(r[2]).district) for r in rows[1:]]
    assert cleaned == [("王芳", "+8613952345671", "朝阳区"), ("李娜", "+8618621457789", "浦东新区")]


_NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")  # a CSV never holds NUL
_CHINESE = st.sampled_from("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")
_CSV_TEXT = st.text(st.one_of(_CHINESE, st.sampled_from("0123456789,\r\n abc-./:（）：，")), min_size=6)


@QUICK
@given(st.text(_NO_NUL))
def test_decode_bytes_round_trips_utf8(text):
    decoded, encoding = decode_bytes(text.encode("utf-8"))
    assert decoded == text.removeprefix("\ufeff")  # a BOM is not text
    assert encoding in ("utf-8", "utf-8-sig")


@QUICK
@given(st.text(_NO_NUL))
def test_decode_bytes_round_trips_utf8_with_bom(text):
    assert decode_bytes(text.encode("utf-8-sig")) == (text, "utf-8-sig")


@QUICK
@given(st.one_of(_CSV_TEXT, st.lists(st.lists(_CHINESE, min_size=2, max_size=3).map("".join), min_size=3, max_size=3)
                 .map(lambda names: "姓名\r\n" + "\r\n".join(names) + "\r\n")))  # fmt: skip
def test_decode_bytes_round_trips_gb18030(text):
    data = text.encode("gb18030")
    assume(text.isascii() or not _is_utf8(data))  # see the test below
    decoded, encoding = decode_bytes(data)
    assert decoded == text
    assert encoding == ("utf-8" if text.isascii() else "gb18030")  # ASCII is the same in both


def test_bytes_that_are_both_utf8_and_gb18030_read_as_utf8():
    # The price of trying UTF-8 first. GB18030 bytes are valid UTF-8 only by accident, which
    # takes a text of a character or two; a file of names and phones is never that short.
    assert decode_bytes("茅".encode("gb18030")) == ("é", "utf-8")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_CLEANERS = [clean_name, clean_phone, clean_email, split_address, parse_datetime, parse_date, parse_money, parse_gender]
_CELL_TEXT = st.one_of(
    st.text(),
    st.text(st.sampled_from("0123456789０１２３４５６７８９+-/.:年月日时分 ¥元万@转()（）省市区县路号王芳北京上海")),
)


@QUICK
@given(st.sampled_from(_CLEANERS), _CELL_TEXT)
def test_a_cleaner_returns_or_rejects_never_crashes(cleaner, text):
    # An import goes on past a bad row only if every failure is a Rejected naming its field.
    try:
        cleaner(text)
    except Rejected as exc:
        assert exc.field and exc.reason


def test_the_mobile_fast_path_agrees_with_a_full_parse():
    """Chinese mobiles skip the parse (their prefix decides): for every prefix the answer must be
    what libphonenumber says of the whole number."""
    import random

    import phonenumbers

    from server.imports import cleaning as c

    rng = random.Random(11)
    for _ in range(3000):
        digits = f"1{rng.randrange(10**10):010d}"
        try:
            parsed = phonenumbers.parse(digits, "CN")
        except phonenumbers.NumberParseException:
            parsed = None
        valid = parsed is not None and phonenumbers.is_valid_number(parsed)
        kind = phonenumbers.number_type(parsed) if parsed is not None else None
        try:
            got = c.clean_phone(digits)
        except c.Rejected:
            got = None
        if got is not None:
            assert valid and got == ("+86" + digits, digits, "mobile"), digits
        elif valid and kind == phonenumbers.PhoneNumberType.MOBILE:
            assert c._looks_made_up(digits, kind), digits  # refused only as a made-up number
