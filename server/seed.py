"""Demo data: the reference chain of REQUIREMENTS.md (a home-furnishing chain, Chinese data).

``seed_demo()`` fills an empty, migrated database with two regions, seven stores (two pilots),
their staff, the catalogue, the pipeline and a customer base with two years of history:
orders, interactions, complaints, opportunities with their stage history, and tasks.
The content is deterministic for a given ``rng_seed`` and ``now`` (ids are UUIDv7, so they
differ between runs).

Rows are generated per store in batches of customers with all their children (memory stays flat
at any size), and each batch is written in one transaction that allocates the batch's versions from
the store's scope; the next batch is generated in a thread while the previous one is written.
Writing goes straight to the driver (COPY on PostgreSQL, executemany on SQLite): neither
builds multi-row statements, so no batch comes near the bound-parameter limits, and Piccolo
Table objects are never instantiated per row (too slow for 500,000 customers).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

from faker import Faker
from piccolo.engine.postgres import PostgresEngine
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from server.auth.passwords import hash_password
from server.db import engine, insert_many, transaction
from server.kb.content import ARTICLES as KB_ARTICLES
from server.stores.tables import Store
from server.sync.service import CATALOG_SCOPE, ORG_SCOPE, allocate_versions, store_scope
from shared.enums import (
    ComplaintCategory,
    ComplaintStatus,
    Gender,
    IdentityKind,
    InteractionChannel,
    InteractionKind,
    OrderChannel,
    PaymentMethod,
    PhoneKind,
    Role,
    StageKind,
    TaskKind,
    TaskSource,
    TaskStatus,
)
from shared.ids import uuid7

DEMO_PASSWORD = "floorwalker"
DEFAULT_CUSTOMERS = 600
BATCH_CUSTOMERS = 1_000  # customers (with all their children) per transaction

# Stores' local time. Asia/Shanghai has had no daylight saving since 1991: a fixed offset will do.
CST = timezone(timedelta(hours=8), "Asia/Shanghai")
CENT = Decimal("0.01")
YUAN = Decimal("1")

# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------

REGIONS = [("north", "华北区"), ("east", "华东区")]


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    region: str
    weight: int  # customers of the default seed (600 in all); other totals keep the proportions
    pilot: bool
    city: str  # as on the store row
    province: str  # as in the customers' addresses
    city_full: str
    area_code: str  # landline prefix
    districts: tuple[str, ...]  # the store's own district first
    streets: tuple[str, ...]
    staff: tuple[tuple[str, str, Role], ...]  # (username, display name, role)


_BEIJING_DISTRICTS = ("朝阳区", "海淀区", "东城区", "西城区", "丰台区", "昌平区", "通州区", "大兴区", "顺义区")
_BEIJING_STREETS = (
    "建国路", "朝阳北路", "望京街", "东三环中路", "酒仙桥路", "广顺北大街", "中关村大街", "学院路",
    "西三环北路", "知春路", "安立路", "北苑路", "朝阳路", "姚家园路", "双井街", "阜成路",
)  # fmt: skip
_SHANGHAI_DISTRICTS = ("浦东新区", "徐汇区", "静安区", "黄浦区", "长宁区", "闵行区", "杨浦区", "普陀区", "宝山区")
_SHANGHAI_STREETS = (
    "世纪大道", "张杨路", "浦东南路", "锦绣路", "漕溪北路", "衡山路", "肇嘉浜路", "虹桥路", "淮海中路",
    "南京西路", "龙华中路", "莲花路", "沪闵路", "东方路", "杨高南路", "天钥桥路",
)  # fmt: skip


def _first(home: str, districts: tuple[str, ...]) -> tuple[str, ...]:
    return (home, *(d for d in districts if d != home))


STORES = [
    StoreSpec(
        "BJ-CY", "北京朝阳店", "north", 150, True, "北京", "北京市", "北京市", "10",
        _first("朝阳区", _BEIJING_DISTRICTS), _BEIJING_STREETS,
        (
            ("manager.bjcy", "王海涛", Role.STORE_MANAGER),
            ("rep.bjcy", "李娜", Role.REP),
            ("rep2.bjcy", "张伟", Role.REP),
        ),
    ),
    StoreSpec(
        "BJ-HD", "北京海淀店", "north", 70, False, "北京", "北京市", "北京市", "10",
        _first("海淀区", _BEIJING_DISTRICTS), _BEIJING_STREETS,
        (("manager.bjhd", "杨帆", Role.STORE_MANAGER), ("rep.bjhd", "周婷", Role.REP)),
    ),
    StoreSpec(
        "TJ-HP", "天津和平店", "north", 55, False, "天津", "天津市", "天津市", "22",
        ("和平区", "河西区", "南开区", "河东区", "河北区", "红桥区", "西青区", "津南区"),
        ("南京路", "滨江道", "和平路", "成都道", "卫津路", "友谊路", "黄河道", "红旗路", "津塘路", "大沽南路"),
        (("manager.tjhp", "吴刚", Role.STORE_MANAGER), ("rep.tjhp", "郑爽", Role.REP)),
    ),
    StoreSpec(
        "SH-PD", "上海浦东店", "east", 150, True, "上海", "上海市", "上海市", "21",
        _first("浦东新区", _SHANGHAI_DISTRICTS), _SHANGHAI_STREETS,
        (("manager.shpd", "陈静", Role.STORE_MANAGER), ("rep.shpd", "刘洋", Role.REP)),
    ),
    StoreSpec(
        "SH-XH", "上海徐汇店", "east", 70, False, "上海", "上海市", "上海市", "21",
        _first("徐汇区", _SHANGHAI_DISTRICTS), _SHANGHAI_STREETS,
        (("manager.shxh", "黄磊", Role.STORE_MANAGER), ("rep.shxh", "林晓", Role.REP)),
    ),
    StoreSpec(
        "HZ-XH", "杭州西湖店", "east", 55, False, "杭州", "浙江省", "杭州市", "571",
        ("西湖区", "拱墅区", "上城区", "滨江区", "余杭区", "萧山区"),
        ("文三路", "天目山路", "学院路", "曙光路", "保俶路", "莫干山路", "庆春路", "江南大道", "文一西路", "古墩路"),
        (("manager.hzxh", "徐慧", Role.STORE_MANAGER), ("rep.hzxh", "何俊", Role.REP)),
    ),
    StoreSpec(
        "NJ-XW", "南京玄武店", "east", 50, False, "南京", "江苏省", "南京市", "25",
        ("玄武区", "鼓楼区", "秦淮区", "建邺区", "栖霞区", "江宁区"),
        ("中山路", "北京东路", "龙蟠路", "珠江路", "中央路", "汉中路", "江东中路", "集庆门大街", "仙林大道",
         "玄武大道"),
        (("manager.njxw", "马超", Role.STORE_MANAGER), ("rep.njxw", "高雪", Role.REP)),
    ),
]  # fmt: skip

HEAD_OFFICE = [
    ("admin", "系统管理员", Role.ADMIN, None),
    ("region.north", "赵建国", Role.REGIONAL_MANAGER, "north"),
    ("region.east", "孙丽华", Role.REGIONAL_MANAGER, "east"),
]

OPENING_HOURS = {
    **{day: [["10:00", "22:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["09:30", "22:30"]],
    "sun": [["09:30", "22:30"]],
}

# --------------------------------------------------------------------------------------------
# Catalogue and pipeline
# --------------------------------------------------------------------------------------------

# (code, name_zh, name_en, repurchase_days, [(sku, name_zh, name_en, price)])
CATALOG: list[tuple[str, str, str, int | None, list[tuple[str, str, str, str]]]] = [
    ("sofa", "沙发", "Sofa", None, [
        ("SOFA-001", "北欧布艺三人沙发", "Nordic fabric three-seat sofa", "6999"),
        ("SOFA-002", "真皮转角沙发", "Leather corner sofa", "15999"),
        ("SOFA-003", "科技布双人沙发", "Tech-fabric loveseat", "3999"),
        ("SOFA-004", "意式极简真皮沙发", "Italian minimalist leather sofa", "19800"),
        ("SOFA-005", "电动功能沙发", "Power recliner sofa", "9999"),
    ]),
    ("mattress", "床垫", "Mattress", None, [
        ("MAT-001", "独立袋装弹簧床垫", "Pocket-spring mattress", "3299"),
        ("MAT-002", "天然乳胶床垫", "Natural latex mattress", "5999"),
        ("MAT-003", "记忆棉床垫", "Memory-foam mattress", "2899"),
        ("MAT-004", "椰棕护脊硬床垫", "Firm coir mattress", "1599"),
        ("MAT-005", "酒店款高端床垫", "Hotel-collection luxury mattress", "8999"),
    ]),
    ("bed", "床", "Bed", None, [
        ("BED-001", "实木双人床1.8米", "Solid-wood double bed 1.8 m", "4599"),
        ("BED-002", "布艺软包床", "Upholstered bed", "3899"),
        ("BED-003", "真皮婚床", "Leather wedding bed", "7999"),
        ("BED-004", "儿童床1.2米", "Children's bed 1.2 m", "2299"),
        ("BED-005", "储物高箱床", "Storage bed", "3299"),
    ]),
    ("bed_sheet", "床单", "Bed sheet", 180, [
        ("SHEET-001", "纯棉床单", "Cotton bed sheet", "199"),
        ("SHEET-002", "天丝床单", "Tencel bed sheet", "399"),
        ("SHEET-003", "长绒棉床单", "Long-staple cotton sheet", "299"),
        ("SHEET-004", "磨毛床单", "Brushed bed sheet", "159"),
    ]),
    ("duvet_cover", "被套", "Duvet cover", 365, [
        ("DUVET-001", "纯棉被套", "Cotton duvet cover", "299"),
        ("DUVET-002", "真丝被套", "Silk duvet cover", "1299"),
        ("DUVET-003", "60支长绒棉被套", "60s long-staple cotton duvet cover", "599"),
        ("DUVET-004", "水洗棉被套", "Washed-cotton duvet cover", "259"),
    ]),
    ("cushion", "靠垫", "Cushion", 365, [
        ("CUSH-001", "丝绒靠垫", "Velvet cushion", "129"),
        ("CUSH-002", "亚麻靠垫", "Linen cushion", "89"),
        ("CUSH-003", "真皮腰枕", "Leather lumbar cushion", "299"),
        ("CUSH-004", "卡通抱枕", "Cartoon cushion", "59"),
    ]),
    ("pillow", "枕头", "Pillow", 365, [
        ("PIL-001", "天然乳胶枕", "Natural latex pillow", "299"),
        ("PIL-002", "记忆棉枕", "Memory-foam pillow", "199"),
        ("PIL-003", "白鹅绒枕", "Goose-down pillow", "599"),
        ("PIL-004", "荞麦枕", "Buckwheat pillow", "129"),
    ]),
    ("dining_table", "餐桌", "Dining table", None, [
        ("TABLE-001", "实木餐桌1.6米", "Solid-oak dining table 1.6 m", "4999"),
        ("TABLE-002", "岩板餐桌", "Sintered-stone dining table", "6999"),
        ("TABLE-003", "伸缩圆餐桌", "Extendable round dining table", "3599"),
        ("TABLE-004", "大理石餐桌", "Marble dining table", "8999"),
    ]),
    ("dining_chair", "餐椅", "Dining chair", None, [
        ("CHAIR-001", "实木餐椅", "Solid-wood dining chair", "699"),
        ("CHAIR-002", "真皮餐椅", "Leather dining chair", "899"),
        ("CHAIR-003", "北欧餐椅", "Nordic dining chair", "399"),
        ("CHAIR-004", "丝绒餐椅", "Velvet dining chair", "599"),
    ]),
]  # fmt: skip

# (code, name_zh, name_en, kind, probability, idle_days)
PIPELINE = [
    ("initial_contact", "初步接触", "Initial contact", StageKind.OPEN, 10, 3),
    ("needs_confirmed", "需求确认", "Needs confirmed", StageKind.OPEN, 25, 5),
    ("proposal", "方案报价", "Proposal", StageKind.OPEN, 50, 5),
    ("negotiation", "谈判", "Negotiation", StageKind.OPEN, 75, 7),
    ("won", "签约", "Won", StageKind.WON, 100, None),
    ("lost", "输单", "Lost", StageKind.LOST, 0, None),
]

# A basket: (category code, quantity range) parts; optional parts carry a probability.
# (name, weight, [(category, min qty, max qty, probability)], big) — "big" baskets make high-value customers.
BASKETS: list[tuple[str, int, list[tuple[str, int, int, float]], bool]] = [
    ("sofa", 14, [("sofa", 1, 1, 1.0), ("cushion", 2, 4, 0.6)], True),
    ("mattress", 12, [("mattress", 1, 1, 1.0), ("pillow", 2, 2, 0.5)], True),
    ("bedroom", 8, [("bed", 1, 1, 1.0), ("mattress", 1, 1, 0.9), ("bed_sheet", 1, 2, 0.5)], True),
    ("dining", 8, [("dining_table", 1, 1, 1.0), ("dining_chair", 4, 6, 1.0)], True),
    ("chairs", 5, [("dining_chair", 2, 4, 1.0)], False),
    ("bedding", 22, [("bed_sheet", 1, 2, 0.8), ("duvet_cover", 1, 1, 0.7), ("pillow", 1, 2, 0.5)], False),
    ("cushions", 12, [("cushion", 1, 4, 1.0)], False),
    ("pillows", 12, [("pillow", 1, 2, 1.0)], False),
]
BIG_BASKETS = [b for b in BASKETS if b[3]]
SMALL_BASKETS = [b for b in BASKETS if not b[3]]

OPPORTUNITY_TITLES = {
    "sofa": ["客厅沙发换新", "新房客厅沙发采购", "真皮转角沙发", "布艺沙发+靠垫套装"],
    "mattress": ["主卧床垫更换", "床垫升级", "父母房床垫"],
    "bedroom": ["主卧床垫+床架", "婚房卧室整套", "次卧床和床垫", "儿童房床+床垫"],
    "dining": ["餐厅餐桌椅整套", "岩板餐桌+6把餐椅", "新房餐厅家具"],
    "chairs": ["餐椅补配"],
    "bedding": ["床品四件套团购", "换季床品", "酒店式床品套装"],
    "cushions": ["客厅靠垫软装搭配"],
    "pillows": ["全家枕头更换"],
}

# --------------------------------------------------------------------------------------------
# Customer texture
# --------------------------------------------------------------------------------------------

PROFILES = ["lead", "new", "regular", "high", "dormant"]
PROFILE_WEIGHTS = [18, 8, 47, 12, 15]
OPPORTUNITY_CHANCE = {"lead": 0.40, "new": 0.35, "regular": 0.18, "high": 0.35, "dormant": 0.05}

TAGS = ["高价值", "新房装修", "老客户", "会员", "团购", "价格敏感", "设计师推荐"]
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "176", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "199",
)  # fmt: skip
EMAIL_DOMAINS = ["163.com", "126.com", "sina.com", "foxmail.com", "outlook.com", "gmail.com", "aliyun.com"]
WECHAT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
COMPOUND_PREFIXES = (
    "阳光", "金地", "万科", "保利", "华润", "绿城", "龙湖", "远洋", "融创", "中海", "招商", "世茂", "首开",
    "碧桂园", "金茂", "旭辉", "新城", "富力", "星河", "紫薇",
)  # fmt: skip
COMPOUND_SUFFIXES = ("花园", "小区", "家园", "公寓", "华府", "名苑", "府", "城", "壹号院", "天地", "雅苑", "新村")

CONCERNS = ["颜色", "尺寸", "价格", "面料", "送货时间", "软硬度", "环保等级", "安装方式"]
STYLES = ["北欧", "现代简约", "新中式", "轻奢", "意式极简", "日式原木"]
VISIT_BODIES = [
    "到店看了{cat}，比较在意{concern}",
    "客户想看新款布艺沙发，周末带家人来店",
    "带家人来店体验{cat}，试了好几款",
    "新房装修，来店整体看了客厅和卧室的搭配",
    "到店对比了两款{cat}，让我发详细报价",
    "陪朋友来店，顺便看了{cat}",
]
CALL_BODIES = [
    "电话回访：确认{cat}送货时间",
    "电话沟通{cat}的尺寸和颜色",
    "邀请参加周末会员活动，客户说有空会来",
    "回访上次购买的{cat}使用情况，客户满意",
    "客户来电咨询{cat}的保养方法",
]
NOTE_BODIES = [
    "客户预算{budget}元左右，偏好{style}风格",
    "新房预计{month}月交房，届时再联系",
    "对价格比较敏感，等大促活动再下单",
    "设计师推荐过来的客户，需要整体方案",
    "家里有小孩，关注{cat}的环保等级",
]
MESSAGE_BODIES = [
    "微信发送了{cat}新品图片",
    "微信确认到店时间",
    "发送会员优惠券，客户已领取",
    "微信发了{cat}的报价单",
    "客户微信询问{cat}有没有现货",
]
# What was offered (once a first solution was given), by category; picked by the complaint's text,
# so the random stream of the demo stays as it was.
RESOLUTIONS = {
    ComplaintCategory.QUALITY: ["上门检测后免费更换", "补发新的配件并上门安装", "同款换新，并赠送保养套装"],
    ComplaintCategory.DELIVERY: ["重新预约送货时间，并赠送靠垫一个", "补发受损部件，给予2%补偿券"],
    ComplaintCategory.INSTALLATION: ["安排资深师傅重新上门安装", "上门调整并修补墙面"],
    ComplaintCategory.SERVICE: ["店长致电道歉并补发赠品", "专人跟进，当天给出答复"],
    ComplaintCategory.PRICE: ["按30天保价政策退还差价"],
    ComplaintCategory.OTHER: ["核实后补录积分", "重新开具发票并快递寄出"],
}
CALLBACK_NOTES = {
    5: "客户很满意",
    4: "客户认可处理结果",
    3: "客户表示一般",
    2: "客户仍不太满意，店长再跟进",
    1: "客户不满意，已升级区域经理",
}

COMPLAINTS = {
    ComplaintCategory.QUALITY: [
        "沙发坐垫使用两个月出现塌陷",
        "床垫有明显异味，要求更换",
        "餐桌桌面出现裂纹",
        "被套洗后严重缩水",
    ],
    ComplaintCategory.DELIVERY: ["送货比约定时间晚了三天", "送货时外包装破损，床头板有划痕", "预约的送货时间没人联系"],
    ComplaintCategory.INSTALLATION: ["安装师傅迟到两小时，床架安装不稳", "餐桌安装后桌腿不平", "安装后墙面被蹭花"],
    ComplaintCategory.SERVICE: ["导购承诺的赠品没有兑现", "电话客服多次转接没有解决问题", "退货申请一周没有回复"],
    ComplaintCategory.PRICE: ["购买一周后降价，要求补差价", "线上线下价格不一致"],
    ComplaintCategory.OTHER: ["会员积分没有到账", "发票信息开错，要求重开"],
}
COMPLAINT_WEIGHTS = {
    ComplaintCategory.QUALITY: 30,
    ComplaintCategory.DELIVERY: 25,
    ComplaintCategory.INSTALLATION: 15,
    ComplaintCategory.SERVICE: 15,
    ComplaintCategory.PRICE: 10,
    ComplaintCategory.OTHER: 5,
}
LOST_REASONS = [
    "价格超出预算",
    "选择了竞品",
    "新房装修延期，暂不购买",
    "款式不满意",
    "送货周期太长",
    "客户失联",
    "家人意见不统一，暂时搁置",
]
MANUAL_TASKS = [
    (TaskKind.CALL, "回访：确认{cat}送货时间"),
    (TaskKind.CALL, "电话邀约：周末新品品鉴会"),
    (TaskKind.CALL, "回访：询问{cat}使用感受"),
    (TaskKind.VISIT, "预约到店：带家人看{cat}"),
    (TaskKind.VISIT, "上门量尺：确认{cat}尺寸"),
    (TaskKind.OTHER, "整理客户新房户型图"),
    (TaskKind.OTHER, "准备报价单：{cat}"),
    (TaskKind.FOLLOW_UP, "跟进：发送{cat}优惠活动"),
]

# --------------------------------------------------------------------------------------------
# Rows: one tuple type per table, fields named as the table's columns (id first). Each gets
# the sync columns (version, deleted, updated_at) appended when written.
# --------------------------------------------------------------------------------------------


class RegionRow(NamedTuple):
    id: uuid.UUID
    code: str
    name: str


class StoreRow(NamedTuple):
    id: uuid.UUID
    code: str
    name: str
    city: str
    region_id: uuid.UUID
    time_zone: str
    opening_hours: str
    pilot: bool
    active: bool


class UserRow(NamedTuple):
    id: uuid.UUID
    username: str
    display_name: str
    password_hash: str
    role: str
    store_id: uuid.UUID | None
    region_id: uuid.UUID | None
    language: str
    active: bool
    created_at: datetime


class CategoryRow(NamedTuple):
    id: uuid.UUID
    code: str
    name_zh: str
    name_en: str
    repurchase_days: int | None


class ProductRow(NamedTuple):
    id: uuid.UUID
    sku: str
    name_zh: str
    name_en: str
    category_id: uuid.UUID
    price: Decimal


class KbRow(NamedTuple):
    id: uuid.UUID
    code: str
    topic: str
    title: str
    title_en: str
    tags: str
    body: str


class StageRow(NamedTuple):
    id: uuid.UUID
    code: str
    name_zh: str
    name_en: str
    position: int
    kind: str
    probability: int
    idle_days: int | None


class CustomerRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    owner_id: uuid.UUID | None
    name: str
    gender: str | None
    birthday: date | None
    email: str | None
    province: str
    city: str
    district: str
    address: str
    consents: str
    created_at: datetime


class PhoneRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    number: str
    digits: str
    kind: str
    is_primary: bool
    created_at: datetime


class TagRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    tag: str
    created_at: datetime


class IdentityRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    value: str
    created_at: datetime


class OrderRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    sold_by_store_id: uuid.UUID | None
    ordered_at: datetime
    amount: Decimal
    payment_method: str
    external_ref: str


class OrderLineRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    category_id: uuid.UUID
    product_name: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class InteractionRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    user_id: uuid.UUID | None
    kind: str
    channel: str
    occurred_at: datetime
    duration_seconds: int | None
    body: str
    product_id: uuid.UUID | None
    category_id: uuid.UUID | None
    created_at: datetime


class OpportunityRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    owner_id: uuid.UUID | None
    title: str
    stage_id: uuid.UUID
    amount: Decimal
    expected_close_date: date | None
    contract_end_date: date | None
    stage_entered_at: datetime
    lost_reason: str | None
    closed_at: datetime | None
    created_at: datetime


class StageHistoryRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    opportunity_id: uuid.UUID
    stage_id: uuid.UUID
    entered_at: datetime
    left_at: datetime | None
    moved_by_id: uuid.UUID | None


class ComplaintRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    customer_id: uuid.UUID
    owner_id: uuid.UUID | None
    category: str
    status: str
    description: str
    opened_at: datetime
    history_retrieved_at: datetime | None
    first_response_at: datetime | None
    solved_at: datetime | None
    callback_at: datetime | None
    satisfaction: int | None
    resolution: str
    callback_note: str


class TaskRow(NamedTuple):
    id: uuid.UUID
    store_id: uuid.UUID
    owner_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    kind: str
    title: str
    notes: str
    due_at: datetime
    status: str
    source: str
    completed_at: datetime | None
    created_by_id: uuid.UUID | None
    created_at: datetime


# Table of each row type, in writing order (parents before children).
TABLES: dict[type[tuple], str] = {
    RegionRow: "regions",
    StoreRow: "stores",
    UserRow: "users",
    CategoryRow: "categories",
    ProductRow: "products",
    StageRow: "pipeline_stages",
    KbRow: "kb_articles",
    CustomerRow: "customers",
    PhoneRow: "customer_phones",
    TagRow: "customer_tags",
    IdentityRow: "customer_identities",
    OrderRow: "orders",
    OrderLineRow: "order_lines",
    InteractionRow: "interactions",
    OpportunityRow: "opportunities",
    StageHistoryRow: "stage_history",
    ComplaintRow: "complaints",
    TaskRow: "tasks",
}
SYNC_COLUMNS = ("version", "deleted", "updated_at")
# When each child row's story starts: its customer must already exist then.
EVENT_TIME: dict[type[tuple], str] = {
    OrderRow: "ordered_at",
    InteractionRow: "occurred_at",
    OpportunityRow: "created_at",
    ComplaintRow: "opened_at",
    TaskRow: "created_at",
}


class Rows:
    """Rows of one transaction, grouped by table, written in TABLES order."""

    def __init__(self) -> None:
        self.by_type: dict[type[tuple], list[tuple]] = {t: [] for t in TABLES}

    def add(self, row: tuple) -> None:
        self.by_type[type(row)].append(row)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.by_type.values())

    def mark(self) -> dict[type[tuple], int]:
        return {t: len(rows) for t, rows in self.by_type.items()}

    def earliest_since(self, mark: dict[type[tuple], int]) -> datetime:
        """The earliest event time among the rows added after ``mark`` (a card predates its history)."""
        times = [
            getattr(row, column)
            for row_type, column in EVENT_TIME.items()
            for row in self.by_type[row_type][mark[row_type] :]
        ]
        return min(times, default=datetime.max.replace(tzinfo=UTC))


async def write(scope: str, rows: Rows, updated_at: datetime, counts: dict[str, int]) -> None:
    """Write ``rows`` in one transaction; they get consecutive versions of ``scope``, in order."""
    total = len(rows)
    if total == 0:
        return
    postgres = isinstance(engine(), PostgresEngine)
    async with transaction() as txn:
        version = await allocate_versions(scope, total) - total + 1
        for row_type, table_rows in rows.by_type.items():
            if not table_rows:
                continue
            table = TABLES[row_type]
            columns = (*row_type._fields, *SYNC_COLUMNS)
            records = [(*row, version + i, False, updated_at) for i, row in enumerate(table_rows)]
            version += len(records)
            if postgres:
                await txn.connection.copy_records_to_table(table, records=records, columns=columns)
            else:
                # sqlite3 adapts UUID, datetime, date and Decimal through the adapters Piccolo registers.
                placeholders = ", ".join("?" * len(columns))
                quoted = ", ".join(f'"{c}"' for c in columns)
                await txn.connection.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({placeholders})', records)
            counts[table] = counts.get(table, 0) + len(records)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    id: uuid.UUID
    name_zh: str
    category_id: uuid.UUID
    category: str  # code
    category_zh: str
    price: Decimal


@dataclass(frozen=True)
class Stage:
    id: uuid.UUID
    code: str
    name_zh: str
    position: int
    kind: StageKind
    idle_days: int | None


@dataclass
class StoreContext:
    spec: StoreSpec
    id: uuid.UUID
    manager_id: uuid.UUID
    rep_ids: list[uuid.UUID]
    scope: str = ""

    def __post_init__(self) -> None:
        self.scope = store_scope(self.id)


class NumberSequence:
    """Unique, random-looking numbers of ``digits`` digits without remembering them: a counter that
    moves on by random steps, through an affine bijection modulo 10**digits (so no repeats while the
    counter stays below 10**digits; the step is sized for two million numbers)."""

    MULTIPLIER = 73_939_133  # odd and not a multiple of 5, so coprime with 10**digits

    def __init__(self, rng: random.Random, digits: int) -> None:
        self.rng = rng
        self.digits = digits
        self.modulus = 10**digits
        self.max_step = max(1, self.modulus // 2_000_000)
        self.counter = rng.randrange(self.modulus // 100)

    def next(self) -> str:
        self.counter += self.rng.randint(1, self.max_step)
        if self.counter >= self.modulus:
            raise RuntimeError(f"ran out of unique {self.digits}-digit numbers")
        return f"{(self.MULTIPLIER * self.counter + 12_345) % self.modulus:0{self.digits}d}"


@dataclass
class Candidates:
    """What a store's first batch offers for each rep's open tasks."""

    customers: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (customer id, category zh)
    open_opportunities: list[tuple[uuid.UUID, uuid.UUID, str, Stage, datetime, date | None]] = field(
        default_factory=list
    )  # (opportunity id, customer id, title, stage, entered at, expected close)
    won_contracts: list[tuple[uuid.UUID, uuid.UUID, str, date]] = field(default_factory=list)
    callbacks: list[tuple[uuid.UUID, datetime]] = field(default_factory=list)  # (customer id, solved at)
    browses: list[tuple[uuid.UUID, str, datetime]] = field(default_factory=list)  # (customer, category zh, at)


def distribute(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainders)."""
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(size, total - start)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class DemoChain:
    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.today = now.astimezone(CST).date()
        fake = Faker("zh_CN")
        fake.seed_instance(rng.getrandbits(32))
        # Faker is slow; draw pools once (they keep its frequency weighting) and combine them.
        self.surnames = [fake.last_name() for _ in range(3000)]
        self.female_names = [fake.first_name_female() for _ in range(1500)]
        self.male_names = [fake.first_name_male() for _ in range(1500)]
        self.email_names = [fake.user_name() for _ in range(500)]
        self.compounds = [p + s for p in COMPOUND_PREFIXES for s in COMPOUND_SUFFIXES]
        self.mobiles = NumberSequence(rng, 8)
        self.landlines = NumberSequence(rng, 7)
        self.pos_members = NumberSequence(rng, 10)
        self.shop_ids = NumberSequence(rng, 11)
        self.qq_numbers = NumberSequence(rng, 9)
        self.email_counter = rng.randrange(100, 1000)
        self.order_counter = rng.randrange(10_000, 100_000)
        self.products: list[Product] = []
        self.by_category: dict[str, list[Product]] = {}
        self.stages: list[Stage] = []
        self.stores: list[StoreContext] = []

    # ---- time ---------------------------------------------------------------------------

    def local(self, day: date, minutes: int) -> datetime:
        """``minutes`` after local midnight of ``day``, in UTC."""
        return (datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(minutes=minutes)).astimezone(UTC)

    def moment(self, start: datetime, end: datetime) -> datetime:
        """A time between ``start`` and ``end``, in opening hours when the span allows."""
        if end <= start:
            return end
        at = start + (end - start) * self.rng.random()
        snapped = self.local(at.astimezone(CST).date(), self.rng.randrange(10 * 60, 21 * 60 + 45))
        return snapped if start <= snapped <= end else at.replace(microsecond=0)

    def days_ago(self, low: float, high: float) -> datetime:
        end = self.now - timedelta(days=low)
        return self.moment(self.now - timedelta(days=high), end)

    # ---- org and catalogue --------------------------------------------------------------

    def org_rows(self, password_hash: str) -> Rows:
        rows = Rows()
        region_ids = {}
        for code, name in REGIONS:
            region_ids[code] = uuid7()
            rows.add(RegionRow(region_ids[code], code, name))
        hours = json.dumps(OPENING_HOURS)
        joined = self.now - timedelta(days=800)
        for username, display, role, region in HEAD_OFFICE:
            region_id = region_ids[region] if region else None
            rows.add(UserRow(uuid7(), username, display, password_hash, role, None, region_id, "zh-CN", True, joined))
        for spec in STORES:
            store_id = uuid7()
            rows.add(StoreRow(store_id, spec.code, spec.name, spec.city, region_ids[spec.region], "Asia/Shanghai",
                              hours, spec.pilot, True))  # fmt: skip
            manager_id, rep_ids = None, []
            for username, display, role in spec.staff:
                user_id = uuid7()
                rows.add(
                    UserRow(user_id, username, display, password_hash, role, store_id, None, "zh-CN", True, joined)
                )
                if role == Role.STORE_MANAGER:
                    manager_id = user_id
                else:
                    rep_ids.append(user_id)
            assert manager_id is not None
            self.stores.append(StoreContext(spec, store_id, manager_id, rep_ids))
        return rows

    def catalog_rows(self) -> Rows:
        rows = Rows()
        for code, name_zh, name_en, repurchase_days, products in CATALOG:
            category_id = uuid7()
            rows.add(CategoryRow(category_id, code, name_zh, name_en, repurchase_days))
            for sku, p_zh, p_en, price in products:
                product = Product(uuid7(), p_zh, category_id, code, name_zh, Decimal(price).quantize(CENT))
                rows.add(ProductRow(product.id, sku, p_zh, p_en, category_id, product.price))
                self.products.append(product)
                self.by_category.setdefault(code, []).append(product)
        for code, topic, title, title_en, tags, body in KB_ARTICLES:
            rows.add(KbRow(uuid7(), code, topic, title, title_en, tags, body))
        for position, (code, name_zh, name_en, kind, probability, idle_days) in enumerate(PIPELINE, start=1):
            stage = Stage(uuid7(), code, name_zh, position, kind, idle_days)
            rows.add(StageRow(stage.id, code, name_zh, name_en, position, kind, probability, idle_days))
            self.stages.append(stage)
        return rows

    @property
    def open_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.kind == StageKind.OPEN]

    def stage_of(self, kind: StageKind) -> Stage:
        return next(s for s in self.stages if s.kind == kind)

    # ---- baskets ------------------------------------------------------------------------

    def basket(self, big: bool) -> tuple[str, list[tuple[Product, int, Decimal]]]:
        """(basket name, [(product, quantity, unit price)]) — a plausible purchase: furniture when ``big``,
        else textiles and small items."""
        choices = BIG_BASKETS if big else SMALL_BASKETS
        name, _, parts, _ = self.rng.choices(choices, weights=[b[1] for b in choices])[0]
        discount = self.rng.choice((Decimal("1"), Decimal("0.95"), Decimal("0.9"), Decimal("0.88"), Decimal("0.85")))
        lines = []
        for category, low, high, chance in parts:
            if lines and self.rng.random() > chance:
                continue
            product = self.rng.choice(self.by_category[category])
            unit = (product.price * discount).quantize(YUAN).quantize(CENT)
            lines.append((product, self.rng.randint(low, high), unit))
        return name, lines

    # ---- a batch of customers -----------------------------------------------------------

    def customer_batch(self, store: StoreContext, count: int, first: bool) -> Rows:
        rows = Rows()
        candidates: dict[uuid.UUID, Candidates] = {rep: Candidates() for rep in store.rep_ids}
        forced = self.forced_opportunities(store, count) if first else []
        for index in range(count):
            self.customer(store, rows, candidates, forced[index] if index < len(forced) else None)
        if first:
            for rep_id in store.rep_ids:
                self.rep_tasks(store, rep_id, candidates[rep_id], rows)
        return rows

    def forced_opportunities(self, store: StoreContext, count: int) -> list[tuple[uuid.UUID, Stage]]:
        """The first customers of a store: every rep owns an open opportunity in every open stage, and
        the first rep a won one whose contract ends within the next seven days. The reps take turns,
        so the first four customers already cover every open stage (demo seeds with tiny stores)."""
        reps, stages = store.rep_ids, self.open_stages
        forced = [(reps[(i + turn) % len(reps)], stage) for turn in range(len(reps)) for i, stage in enumerate(stages)]
        forced.append((reps[0], self.stage_of(StageKind.WON)))
        return forced[:count]

    def customer(
        self,
        store: StoreContext,
        rows: Rows,
        candidates: dict[uuid.UUID, Candidates],
        force: tuple[uuid.UUID, Stage] | None,
    ) -> None:
        rng = self.rng
        customer_id = uuid7()
        profile = rng.choices(PROFILES, weights=PROFILE_WEIGHTS)[0]
        if force:
            owner_id: uuid.UUID | None = force[0]
            profile = "lead" if profile == "dormant" else profile
        else:
            owner_id = rng.choice(store.rep_ids) if rng.random() < 0.88 else None
        acting_rep = owner_id or rng.choice(store.rep_ids)
        since = {
            "lead": lambda: self.days_ago(2, 400),
            "new": lambda: self.days_ago(1, 30),
            "regular": lambda: self.days_ago(60, 730),
            "high": lambda: self.days_ago(120, 730),
            "dormant": lambda: self.days_ago(420, 730),
        }[profile]()
        # Activity stops well before now for dormant customers.
        active_until = self.now - timedelta(days=380) if profile == "dormant" else self.now
        mark = rows.mark()
        favourite_category = rng.choice(self.products).category_zh  # what tasks and notes talk about

        # -- orders --
        spend_last_year = Decimal(0)
        order_count = {
            "lead": 0,
            "new": rng.choice((0, 1, 1)),
            "regular": rng.choices((1, 2, 3), weights=(55, 30, 15))[0],
            "high": rng.randint(2, 4),
            "dormant": rng.choice((1, 1, 2)),
        }[profile]
        big_chance = {"new": 0.3, "regular": 0.15, "high": 0.4, "dormant": 0.35}.get(profile, 0.0)
        plans = [(rng.random() < big_chance, self.moment(since, active_until)) for _ in range(order_count)]
        if profile == "high":
            plans.append((True, self.moment(max(since, self.now - timedelta(days=330)), self.now)))
        for big, at in sorted(plans, key=lambda p: p[1]):
            amount, category_zh = self.order(store, customer_id, rows, at, big=big, rep_id=acting_rep)
            favourite_category = category_zh
            if at > self.now - timedelta(days=365):
                spend_last_year += amount
        while profile == "high" and spend_last_year <= Decimal(5000):
            at = self.moment(self.now - timedelta(days=300), self.now)
            amount, _ = self.order(store, customer_id, rows, at, big=True, rep_id=acting_rep)
            spend_last_year += amount

        # -- interactions --
        extra = {"lead": (1, 4), "new": (1, 3), "regular": (1, 4), "high": (2, 6), "dormant": (0, 2)}[profile]
        for _ in range(rng.randint(*extra)):
            at = self.moment(since, active_until)
            self.interaction(store, customer_id, acting_rep, rows, at, rng.choice(self.products))
        if profile != "dormant" and rng.random() < 0.14:
            # Fresh behaviour for the rules: a long browse in the last days, sometimes a cart left behind.
            product = rng.choice(self.products)
            at = self.days_ago(0.05, 3)
            channel = rng.choice((InteractionChannel.ONLINE, InteractionChannel.MINI_PROGRAM))
            rows.add(InteractionRow(uuid7(), store.id, customer_id, None, InteractionKind.BROWSE, channel, at,
                                    rng.randint(301, 1500), "", product.id, product.category_id, at))  # fmt: skip
            candidates[acting_rep].browses.append((customer_id, product.category_zh, at))
            if rng.random() < 0.4:
                cart_at = at + timedelta(minutes=rng.randint(2, 30))
                if cart_at < self.now:
                    rows.add(InteractionRow(uuid7(), store.id, customer_id, None, InteractionKind.CART, channel,
                                            cart_at, None, "", product.id, product.category_id, cart_at))  # fmt: skip

        # -- opportunities --
        has_opportunity = force is not None or rng.random() < OPPORTUNITY_CHANCE[profile]
        if has_opportunity:
            self.opportunity(store, customer_id, acting_rep, rows, candidates[acting_rep], since, profile,
                             force[1] if force else None)  # fmt: skip

        # -- complaints --
        if (plans or profile == "high") and rng.random() < 0.075:
            self.complaint(store, customer_id, acting_rep, rows, candidates[acting_rep], since, active_until)

        # -- done and cancelled follow-ups of the past --
        if profile != "lead" and rng.random() < {"high": 0.6, "dormant": 0.2}.get(profile, 0.3):
            for _ in range(rng.randint(1, 2)):
                due = self.moment(since, min(active_until, self.now - timedelta(days=1)))
                kind, title = rng.choice(MANUAL_TASKS)
                cancelled = rng.random() < 0.08
                done_at = None if cancelled else min(due + timedelta(hours=rng.uniform(-6, 20)), self.now)
                rows.add(TaskRow(uuid7(), store.id, acting_rep, customer_id, None, kind,
                                 title.format(cat=favourite_category), "", due,
                                 TaskStatus.CANCELLED if cancelled else TaskStatus.DONE, TaskSource.MANUAL,
                                 done_at, acting_rep, due - timedelta(days=rng.randint(1, 5))))  # fmt: skip

        # -- the card itself (created before everything it has) --
        created_at = min(since, rows.earliest_since(mark)) - timedelta(hours=rng.randint(1, 72))
        self.card(store, customer_id, owner_id, profile, created_at, rows)
        candidates[acting_rep].customers.append((customer_id, favourite_category))

    def card(
        self, store: StoreContext, customer_id: uuid.UUID, owner_id: uuid.UUID | None, profile: str,
        created_at: datetime, rows: Rows,
    ) -> None:  # fmt: skip
        rng, spec = self.rng, store.spec
        gender = rng.choices((Gender.FEMALE, Gender.MALE, Gender.OTHER, None), weights=(45, 36, 1, 18))[0]
        given = self.female_names if gender == Gender.FEMALE else self.male_names
        if gender not in (Gender.FEMALE, Gender.MALE):
            given = rng.choice((self.female_names, self.male_names))
        name = rng.choice(self.surnames) + rng.choice(given)
        birthday = None
        if rng.random() < 0.62:
            age = rng.randint(25, 45) if rng.random() < 0.8 else rng.randint(20, 68)
            birthday = self.today - timedelta(days=age * 365 + rng.randint(0, 364))
        email = None
        if rng.random() < 0.35:
            self.email_counter += rng.randint(1, 9)
            if rng.random() < 0.4:
                email = f"{int(self.qq_numbers.next()) + 10**8}@qq.com"
            else:
                email = f"{rng.choice(self.email_names)}{self.email_counter}@{rng.choice(EMAIL_DOMAINS)}"
        district = spec.districts[0] if rng.random() < 0.6 else rng.choice(spec.districts)
        address = (
            f"{rng.choice(spec.streets)}{rng.randint(1, 399)}号{rng.choice(self.compounds)}"
            f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 33)}{rng.randint(1, 6):02d}室"
        )
        consents = {
            "sms": rng.random() < 0.7,
            "wechat": rng.random() < 0.8,
            "phone_call": rng.random() < 0.6,
            "email": email is not None and rng.random() < 0.5,
        }
        rows.add(CustomerRow(customer_id, store.id, owner_id, name, gender, birthday, email, spec.province,
                             spec.city_full, district, address, json.dumps(consents), created_at))  # fmt: skip

        for index in range(1 if rng.random() < 0.8 else 2):
            digits = rng.choice(MOBILE_PREFIXES) + self.mobiles.next()
            rows.add(PhoneRow(uuid7(), store.id, customer_id, "+86" + digits, digits, PhoneKind.MOBILE, index == 0,
                              created_at))  # fmt: skip
        if rng.random() < 0.07:
            digits = spec.area_code + str(rng.randint(5, 8)) + self.landlines.next()
            rows.add(PhoneRow(uuid7(), store.id, customer_id, "+86" + digits, digits, PhoneKind.LANDLINE, False,
                              created_at))  # fmt: skip

        identities: list[tuple[IdentityKind, str]] = []
        if rng.random() < 0.45:
            identities.append((IdentityKind.POS_MEMBER, "POS" + self.pos_members.next()))
        if rng.random() < 0.30:
            identities.append((IdentityKind.ONLINE_SHOP, "TM" + self.shop_ids.next()))
        if rng.random() < 0.40:
            identities.append((IdentityKind.WECHAT_OPENID, "o" + "".join(rng.choices(WECHAT_ALPHABET, k=27))))
            if rng.random() < 0.6:
                identities.append((IdentityKind.WECHAT_UNIONID, "o" + "".join(rng.choices(WECHAT_ALPHABET, k=27))))
        for kind, value in identities:
            rows.add(IdentityRow(uuid7(), store.id, customer_id, kind, value, created_at))

        tags: list[str] = []
        if profile == "high":
            tags.append("高价值")
        if identities and identities[0][0] == IdentityKind.POS_MEMBER and rng.random() < 0.7:
            tags.append("会员")
        if profile in ("regular", "high") and created_at < self.now - timedelta(days=365) and rng.random() < 0.5:
            tags.append("老客户")
        for tag in rng.sample(["新房装修", "团购", "价格敏感", "设计师推荐"], k=rng.choice((0, 0, 1, 1, 2))):
            if len(tags) < 3:
                tags.append(tag)
        for tag in tags:
            rows.add(TagRow(uuid7(), store.id, customer_id, tag, created_at))

    def order(
        self, store: StoreContext, customer_id: uuid.UUID, rows: Rows, at: datetime, *, big: bool,
        rep_id: uuid.UUID, lines: list[tuple[Product, int, Decimal]] | None = None,
        channel: OrderChannel | None = None,
    ) -> tuple[Decimal, str]:  # fmt: skip
        """An order with its lines and, often, the visit or browse that led to it."""
        rng = self.rng
        if lines is None:
            _, lines = self.basket(big=big)
        if channel is None:
            channel = rng.choices(list(OrderChannel), weights=(60, 25, 15))[0]
        self.order_counter += rng.randint(1, 40)
        stamp = at.astimezone(CST).strftime("%Y%m%d")
        if channel == OrderChannel.STORE:
            payment = rng.choices(
                (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY, PaymentMethod.UNIONPAY, PaymentMethod.CARD,
                 PaymentMethod.INSTALLMENT, PaymentMethod.CASH), weights=(35, 25, 15, 10, 10, 5))[0]  # fmt: skip
            ref = f"POS-{store.spec.code.replace('-', '')}-{stamp}-{self.order_counter:08d}"
        elif channel == OrderChannel.ONLINE:
            payment = rng.choices(
                (PaymentMethod.ALIPAY, PaymentMethod.WECHAT_PAY, PaymentMethod.UNIONPAY, PaymentMethod.INSTALLMENT),
                weights=(60, 20, 10, 10),
            )[0]
            ref = f"TM{stamp}{self.order_counter:010d}"
        else:
            payment = PaymentMethod.WECHAT_PAY
            ref = f"MP{stamp}{self.order_counter:010d}"
        order_id = uuid7()
        total = Decimal(0)
        line_rows = []
        for product, quantity, unit in lines:
            amount = unit * quantity
            total += amount
            line_rows.append(OrderLineRow(uuid7(), store.id, order_id, product.id, product.category_id,
                                          product.name_zh, quantity, unit, amount))  # fmt: skip
        sold_by = store.id if channel == OrderChannel.STORE else None
        rows.add(OrderRow(order_id, store.id, customer_id, channel, sold_by, at, total, payment, ref))
        for line in line_rows:
            rows.add(line)
        main = lines[0][0]
        # What led to the purchase: a visit before a store order, a browse (and cart) before an online one.
        if channel == OrderChannel.STORE and rng.random() < 0.6:
            days_before = rng.choice((0, 0, 1, 3, 7))
            visit_at = (
                at - timedelta(minutes=rng.randint(30, 90))
                if days_before == 0
                else self.local(at.astimezone(CST).date() - timedelta(days=days_before), rng.randrange(600, 1290))
            )
            self.interaction(store, customer_id, rep_id, rows, visit_at, main, kind=InteractionKind.VISIT)
        elif channel != OrderChannel.STORE and rng.random() < 0.7:
            browse_channel = (
                InteractionChannel.ONLINE if channel == OrderChannel.ONLINE else InteractionChannel.MINI_PROGRAM
            )
            browse_at = at - timedelta(days=rng.randint(0, 5), minutes=rng.randint(10, 300))
            rows.add(InteractionRow(uuid7(), store.id, customer_id, None, InteractionKind.BROWSE, browse_channel,
                                    browse_at, rng.randint(60, 1200), "", main.id, main.category_id,
                                    browse_at))  # fmt: skip
            if rng.random() < 0.3:
                cart_at = at - timedelta(minutes=rng.randint(5, 60))
                rows.add(InteractionRow(uuid7(), store.id, customer_id, None, InteractionKind.CART, browse_channel,
                                        cart_at, None, "", main.id, main.category_id, cart_at))  # fmt: skip
        return total, main.category_zh

    def interaction(
        self, store: StoreContext, customer_id: uuid.UUID, rep_id: uuid.UUID, rows: Rows, at: datetime,
        product: Product, kind: InteractionKind | None = None,
    ) -> None:  # fmt: skip
        rng = self.rng
        if kind is None:
            kind = rng.choices(list(InteractionKind), weights=(25, 20, 20, 5, 15, 15))[0]
        cat = product.category_zh
        text = {
            "cat": cat,
            "concern": rng.choice(CONCERNS),
            "style": rng.choice(STYLES),
            "budget": rng.choice((5000, 8000, 10000, 20000, 30000, 50000)),
            "month": rng.randint(1, 12),
        }
        user_id: uuid.UUID | None = rep_id
        product_id = category_id = duration = None
        body = ""
        if kind == InteractionKind.VISIT:
            channel, duration, body = InteractionChannel.STORE, rng.randint(600, 5400), rng.choice(VISIT_BODIES)
        elif kind == InteractionKind.CALL:
            channel = rng.choices((InteractionChannel.PHONE, InteractionChannel.CALL_CENTRE), weights=(9, 1))[0]
            duration, body = rng.randint(45, 900), rng.choice(CALL_BODIES)
        elif kind == InteractionKind.NOTE:
            channel, body = InteractionChannel.STORE, rng.choice(NOTE_BODIES)
        elif kind == InteractionKind.MESSAGE:
            channel, body = InteractionChannel.WECHAT, rng.choice(MESSAGE_BODIES)
        else:  # browse and cart come from the shop systems: nobody logged them
            user_id = None
            channel = rng.choice((InteractionChannel.ONLINE, InteractionChannel.MINI_PROGRAM))
            product_id, category_id = product.id, product.category_id
            if kind == InteractionKind.BROWSE:
                duration = rng.randint(301, 1500) if rng.random() < 0.5 else rng.randint(20, 300)
        rows.add(InteractionRow(uuid7(), store.id, customer_id, user_id, kind, channel, at, duration,
                                body.format(**text), product_id, category_id, at))  # fmt: skip

    def opportunity(
        self, store: StoreContext, customer_id: uuid.UUID, rep_id: uuid.UUID, rows: Rows, candidates: Candidates,
        since: datetime, profile: str, forced_stage: Stage | None,
    ) -> None:  # fmt: skip
        """An opportunity and its stage history; a won one also makes its order. A forced open stage
        makes it open in that stage; a forced won stage makes it won with a contract ending soon."""
        rng = self.rng
        basket_name, lines = self.basket(big=rng.random() < 0.8)
        title = rng.choice(OPPORTUNITY_TITLES[basket_name])
        amount = sum((unit * quantity for _, quantity, unit in lines), Decimal(0))
        open_stages = self.open_stages
        contract_soon = forced_stage is not None and forced_stage.kind == StageKind.WON
        if forced_stage is not None:
            outcome = "won" if contract_soon else "open"
        elif profile == "dormant":
            outcome = rng.choice(("won", "lost"))
        else:
            outcome = rng.choices(("open", "won", "lost"), weights=(60, 25, 15))[0]

        # The stages passed, then the current one.
        if outcome == "open":
            current = (
                forced_stage if forced_stage is not None else rng.choices(open_stages, weights=(30, 30, 25, 15))[0]
            )
            path = [s for s in open_stages if s.position <= current.position]
        elif outcome == "won":
            path = [*open_stages, self.stage_of(StageKind.WON)]
        else:
            path = [*open_stages[: rng.randint(1, len(open_stages))], self.stage_of(StageKind.LOST)]
        durations = [timedelta(days=rng.uniform(0.5, 8)) for _ in path[:-1]]
        if outcome == "open":
            idle = path[-1].idle_days or 5
            entered_current = self.now - timedelta(days=rng.uniform(0.05, idle * 1.7))
        else:
            latest = self.now - timedelta(days=380 if profile == "dormant" else 1)
            earliest = since + sum(durations, timedelta())
            entered_current = self.moment(min(earliest, latest), latest)
        entered = [entered_current]
        for duration in reversed(durations):
            entered.insert(0, entered[0] - duration)

        opportunity_id = uuid7()
        stage = path[-1]
        closed_at = entered_current if outcome != "open" else None
        expected_close = contract_end = None
        if outcome == "open":
            expected_close = self.today + timedelta(
                days=rng.choices((rng.randint(-7, -1), rng.randint(0, 3), rng.randint(4, 45)), weights=(10, 15, 75))[0]
            )
        elif outcome == "won":
            closed_day = entered_current.astimezone(CST).date()
            expected_close = closed_day - timedelta(days=rng.randint(-7, 7))
            if contract_soon or rng.random() < 0.4:
                soon = contract_soon or rng.random() < 0.25
                contract_end = (
                    self.today + timedelta(days=rng.randint(1, 7))
                    if soon and closed_day < self.today
                    else closed_day + timedelta(days=rng.randint(30, 400))
                )
                if contract_end <= self.today + timedelta(days=7) and contract_end > self.today:
                    candidates.won_contracts.append((opportunity_id, customer_id, title, contract_end))
        rows.add(OpportunityRow(opportunity_id, store.id, customer_id, rep_id, title, stage.id, amount.quantize(CENT),
                                expected_close, contract_end, entered_current,
                                rng.choice(LOST_REASONS) if outcome == "lost" else None, closed_at,
                                entered[0] - timedelta(minutes=rng.randint(1, 120))))  # fmt: skip
        for index, step in enumerate(path):
            left_at = entered[index + 1] if index + 1 < len(path) else None
            rows.add(StageHistoryRow(uuid7(), store.id, opportunity_id, step.id, entered[index], left_at, rep_id))
        if outcome == "open":
            candidates.open_opportunities.append(
                (opportunity_id, customer_id, title, stage, entered_current, expected_close)
            )
        elif outcome == "won":
            self.order(store, customer_id, rows, entered_current, big=True, rep_id=rep_id, lines=lines,
                       channel=OrderChannel.STORE)  # fmt: skip

    def complaint(
        self, store: StoreContext, customer_id: uuid.UUID, rep_id: uuid.UUID, rows: Rows, candidates: Candidates,
        since: datetime, active_until: datetime,
    ) -> None:  # fmt: skip
        """A complaint whose service timestamps follow its status."""
        rng = self.rng
        category = rng.choices(list(COMPLAINT_WEIGHTS), weights=list(COMPLAINT_WEIGHTS.values()))[0]
        status = rng.choices(list(ComplaintStatus), weights=(15, 20, 20, 45))[0]
        if active_until < self.now:  # a dormant customer's complaint is long closed
            status = ComplaintStatus.CLOSED
        # Durations of the loop: history within 1 h, first solution within 2 h, call-back within 24 h (mostly).
        steps = [
            timedelta(minutes=rng.randint(2, 55) if rng.random() < 0.88 else rng.randint(61, 180)),
            timedelta(minutes=rng.randint(10, 110) if rng.random() < 0.85 else rng.randint(121, 400)),
            timedelta(hours=rng.uniform(2, 96)),
            timedelta(hours=rng.uniform(1, 23) if rng.random() < 0.85 else rng.uniform(25, 48)),
        ]
        reached = {
            ComplaintStatus.OPEN: rng.choice((0, 1)),
            ComplaintStatus.IN_PROGRESS: 2,
            ComplaintStatus.SOLVED: 3,
            ComplaintStatus.CLOSED: 4,
        }[status]
        elapsed = sum(steps[:reached], timedelta())
        # How long since the last step: short for a live complaint, anything for a closed one.
        slack_days = {
            ComplaintStatus.OPEN: 0.8,
            ComplaintStatus.IN_PROGRESS: 3,
            ComplaintStatus.SOLVED: 1.5,
            ComplaintStatus.CLOSED: 700,
        }[status]
        latest = active_until - elapsed - timedelta(minutes=5)
        opened_at = self.moment(max(since, latest - timedelta(days=slack_days)), latest)
        times: list[datetime | None] = [None, None, None, None]
        at = opened_at
        for index in range(reached):
            at += steps[index]
            times[index] = at
        satisfaction = rng.choices((5, 4, 3, 2, 1), weights=(45, 30, 13, 7, 5))[0] if reached == 4 else None
        owner_id = store.manager_id if rng.random() < 0.4 else rep_id
        description = rng.choice(COMPLAINTS[category])
        offers = RESOLUTIONS[category]
        resolution = offers[len(description) % len(offers)] if reached >= 2 else ""
        note = CALLBACK_NOTES[satisfaction] if satisfaction is not None else ""
        rows.add(ComplaintRow(uuid7(), store.id, customer_id, owner_id, category, status,
                              description, opened_at, *times, satisfaction, resolution, note))  # fmt: skip
        if status == ComplaintStatus.SOLVED and times[2] is not None:
            candidates.callbacks.append((customer_id, times[2]))

    # ---- each rep's open work -----------------------------------------------------------

    def rep_tasks(self, store: StoreContext, rep_id: uuid.UUID, offer: Candidates, rows: Rows) -> None:
        """Open tasks for today, overdue and the coming days, and a few done today: rule-made,
        reminders and manual ones, about the rep's own customers and opportunities."""
        rng = self.rng
        if not offer.customers:
            return
        today, yesterday = self.today, self.today - timedelta(days=1)

        def add(kind, title, source, due_day, customer_id, opportunity_id=None, done=False):
            due = self.local(due_day, rng.randrange(10 * 60, 20 * 60, 15))
            created = min(due, self.now) - timedelta(hours=rng.randint(2, 72))
            completed = min(self.now, created + timedelta(hours=rng.uniform(1, 30))) if done else None
            creator = rep_id if source == TaskSource.MANUAL else None
            status = TaskStatus.DONE if done else TaskStatus.OPEN
            rows.add(TaskRow(uuid7(), store.id, rep_id, customer_id, opportunity_id, kind, title, "", due, status,
                             source, completed, creator, created))  # fmt: skip

        # Reminders about the rep's opportunities: idle too long, close date near.
        for opportunity_id, customer_id, title, stage, entered, expected in offer.open_opportunities[:6]:
            idle = (self.now - entered).days
            if stage.idle_days is not None and idle > stage.idle_days:
                due_day = min(today, (entered + timedelta(days=stage.idle_days + 1)).astimezone(CST).date())
                add(TaskKind.STAGE_REMINDER, f"商机停滞：{title}已在「{stage.name_zh}」{idle}天", TaskSource.REMINDER,
                    max(due_day, today - timedelta(days=3)), customer_id, opportunity_id)  # fmt: skip
            elif expected is not None and today <= expected <= today + timedelta(days=3):
                add(TaskKind.STAGE_REMINDER, f"预计成交日临近：{title}", TaskSource.REMINDER, today, customer_id,
                    opportunity_id)  # fmt: skip
        for opportunity_id, customer_id, title, end in offer.won_contracts[:2]:
            add(TaskKind.STAGE_REMINDER, f"合同7天内到期：{title}（{end:%m月%d日}）", TaskSource.REMINDER, today,
                customer_id, opportunity_id)  # fmt: skip
        # Complaint loop: the satisfaction call-back is due 24 hours after the solution.
        for customer_id, solved_at in offer.callbacks[:2]:
            add(TaskKind.COMPLAINT_CALLBACK, "投诉回访：确认处理结果并记录满意度", TaskSource.RULE,
                (solved_at + timedelta(hours=24)).astimezone(CST).date(), customer_id)  # fmt: skip
        # Behaviour: a long browse yesterday or today → follow up the next day.
        for customer_id, category_zh, at in offer.browses[:3]:
            add(TaskKind.FOLLOW_UP, f"跟进：客户线上浏览{category_zh}超过5分钟", TaskSource.RULE,
                at.astimezone(CST).date() + timedelta(days=1), customer_id)  # fmt: skip
        # Manual to-dos: at least three for today, two overdue, a few in the coming days, two done today.
        plan = [today] * rng.randint(3, 5) + [yesterday - timedelta(days=rng.randint(0, 3)) for _ in range(2)]
        plan += [yesterday] * rng.randint(0, 2) + [today + timedelta(days=rng.randint(1, 6)) for _ in range(4)]
        for due_day in plan:
            customer_id, category_zh = rng.choice(offer.customers)
            kind, title = rng.choice(MANUAL_TASKS)
            add(kind, title.format(cat=category_zh), TaskSource.MANUAL, due_day, customer_id)
        for _ in range(2):
            customer_id, category_zh = rng.choice(offer.customers)
            kind, title = rng.choice(MANUAL_TASKS)
            add(kind, title.format(cat=category_zh), TaskSource.MANUAL, today, customer_id, done=True)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


async def database_is_empty() -> bool:
    """No store rows yet (a fresh, migrated database)."""
    return await Store.count() == 0


async def seed_demo(
    *,
    customers: int | None = None,
    progress: bool = True,
    rng_seed: int = 20261122,
    now: datetime | None = None,
) -> dict[str, int]:
    """Fill an empty database with the demo chain; returns the rows written per table."""
    if not await database_is_empty():
        raise RuntimeError("the database already has stores; the demo chain goes into an empty database only")
    total = DEFAULT_CUSTOMERS if customers is None else customers
    if total < 0:
        raise ValueError("customers must not be negative")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(rng_seed)
    chain = DemoChain(rng, now)
    counts: dict[str, int] = {}

    await write(ORG_SCOPE, chain.org_rows(hash_password(DEMO_PASSWORD)), now, counts)
    await write(CATALOG_SCOPE, chain.catalog_rows(), now, counts)

    per_store = distribute(total, [s.spec.weight for s in chain.stores])
    columns = (
        TextColumn("[bold]演示数据[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("客户", total=total)
        # Generate the next batch (in a thread) while the database takes the previous one. One
        # batch is generated and one written at a time, in order, so the data stays deterministic.
        writing: asyncio.Task[None] | None = None
        try:
            for store, store_total in zip(chain.stores, per_store, strict=True):
                for start, size in chunks(store_total, BATCH_CUSTOMERS):
                    rows = await asyncio.to_thread(chain.customer_batch, store, size, start == 0)
                    if writing is not None:
                        await writing
                    bar.update(task, description=f"客户 · {store.spec.name}")
                    writing = asyncio.create_task(write(store.scope, rows, now, counts))
                    writing.add_done_callback(lambda _, size=size: bar.advance(task, size))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
    from server.rules.service import ensure_defaults

    counts["rules"] = await ensure_defaults()  # the default rules, every one on for every store
    rollout = await seed_rollout(chain, now, random.Random(rng_seed + 1))
    return {**{table: counts.get(table, 0) for table in TABLES.values()}, "rules": counts["rules"], **rollout}


# --------------------------------------------------------------------------------------------
# The roll-out: waves, feedback from the pilots, the pilots' use of the app
# --------------------------------------------------------------------------------------------

# (code, name, days from today to its start, which stores)
WAVES = [
    ("W1", "W1 试点", -30, lambda spec: spec.pilot),
    ("W2", "W2 北区", 14, lambda spec: not spec.pilot and spec.region == "north"),
    ("W3", "W3 华东", 45, lambda spec: not spec.pilot and spec.region != "north"),
]
# (username, text, screen, status, reply, days ago)
FEEDBACK = [
    ("rep.bjcy", "快捷按钮太少，希望能自定义", "/customers", "planned", "已列入下个版本：快捷按钮可自定义。", 19),
    ("rep.shpd", "需要按购买频次分群", "/customers", "acknowledged", "收到，正在和总部运营一起评估。", 15),
    ("rep2.bjcy", "推送太频繁，晚上也会收到", "/messages", "declined", "22:00–08:00 为免打扰时段，可自行调整。", 12),
    ("rep.shpd", "任务列表希望能按到期时间排序", "/tasks", "done", "已上线：任务按到期时间排序。", 9),
    ("rep.bjcy", "希望客户卡片上能看到上次到店时间", "/customers/detail", "new", "", 4),
    ("rep2.bjcy", "离线时记录的拜访，同步失败的提示看不懂", "/sync", "new", "", 1),
]  # fmt: skip
FEEDBACK_COLUMNS = (
    "id", "user_id", "store_id", "text", "screen", "app_version", "screenshot", "status", "reply", "created_at",
    "updated_at", "updated_by_id",
)  # fmt: skip
ACTIVITY_DAYS = 28  # the pilots' reps have used the app this many days back


async def seed_rollout(chain: DemoChain, now: datetime, rng: random.Random) -> dict[str, int]:
    """Waves W1 (the pilots, live for 30 days), W2 (the other northern stores) and W3 (the rest);
    feedback from the pilots' reps in every status; the pilots' reps' daily use of the app."""
    from server.analytics.filters import CHAIN_TZ
    from server.rollout.activity import row_id

    today = now.astimezone(CHAIN_TZ).date()
    users = {r["username"]: r["id"] for r in await Store.raw("SELECT id, username FROM users")}
    waves, members = [], []
    for position, (code, name, offset, belongs) in enumerate(WAVES):
        wave_id = uuid7()
        waves.append((wave_id, code, name, today + timedelta(days=offset), position, "", now))
        members += [(uuid7(), wave_id, store.id) for store in chain.stores if belongs(store.spec)]
    by_user = {rep: store for store in chain.stores for rep in store.rep_ids}
    feedback = []
    for username, text, screen, status, reply, days_ago in FEEDBACK:
        user_id = users[username]
        at = chain.local(today - timedelta(days=days_ago), rng.randrange(10 * 60, 21 * 60))
        answered = now - timedelta(days=days_ago) / 2 if status != "new" else at
        feedback.append((uuid7(), user_id, by_user[user_id].id, text, screen, "1.0", None, status, reply, at,
                         answered, users["admin"] if status != "new" else None))  # fmt: skip
    activity = []
    for store in chain.stores:
        if not store.spec.pilot:
            continue
        for rep_id in store.rep_ids:
            for back in range(ACTIVITY_DAYS, -1, -1):
                day = today - timedelta(days=back)
                if back and rng.random() > 0.8:  # most days; today for sure (the demo opens on it)
                    continue
                first = chain.local(day, rng.randrange(9 * 60 + 30, 11 * 60))
                last = min(now, first + timedelta(minutes=rng.randrange(60, 600)))
                pushes = rng.randint(1, 15)
                rejected = 1 if rng.random() < 0.1 else 0
                activity.append((row_id(rep_id, day), rep_id, store.id, day, rng.randint(4, 40), pushes, rejected,
                                 min(first, last), last))  # fmt: skip
    async with transaction():
        await insert_many("waves", ("id", "code", "name", "starts_on", "position", "notes", "updated_at"), waves)
        await insert_many("wave_stores", ("id", "wave_id", "store_id"), members)
        await insert_many("feedback", FEEDBACK_COLUMNS, feedback)
        await insert_many(
            "activity_days",
            ("id", "user_id", "store_id", "day", "pulls", "pushes", "rejected", "first_at", "last_at"),
            activity,
        )
    return {"waves": len(waves), "feedback": len(feedback), "activity_days": len(activity)}


__all__ = ["DEMO_PASSWORD", "database_is_empty", "seed_demo"]
