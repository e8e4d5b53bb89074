"""The switchable features of the roll-out: what each one is called and what it gates, for the
server (the worker, the admin screens) and the app (which hides what its store has switched off).

A store without a switch of its own has every feature on. App features (quick actions, behaviour
triggers, push, feedback) are switched per store in ``store_features``, which syncs to the store's
phones; each rule is a feature too (``rule.<code>``), switched in the rules' own per-store table, so
a rule has one switch whichever screen changes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

QUICK_ACTIONS = "quick_actions"
BEHAVIOUR_TRIGGERS = "behaviour_triggers"
PUSH = "push"
FEEDBACK = "feedback"
RULE_PREFIX = "rule."

# Every rule the server knows (server.rules.service.DEFAULTS; a test keeps the two lists equal).
RULE_CODES: tuple[str, ...] = (
    "stage_idle",
    "stage_escalation",
    "close_near",
    "contract_end",
    "no_follow_up",
    "complaint_history",
    "complaint_solution",
    "complaint_callback",
    "browse_interest",
    "abandoned_cart",
    "vip_silent",
    "repurchase_due",
)
# The rules that react to what customers do online and in the shop systems.
BEHAVIOUR_RULES: tuple[str, ...] = ("browse_interest", "abandoned_cart", "vip_silent", "repurchase_due")


class Feature(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    label_zh: str
    label_en: str
    description_zh: str
    description_en: str
    rule: str | None = None  # a rule feature: the rule's code (switched in rule_stores)
    rules: tuple[str, ...] = ()  # rules this feature also gates (behaviour triggers)


APP_FEATURES: tuple[Feature, ...] = (
    Feature(
        code=QUICK_ACTIONS,
        label_zh="快捷操作",
        label_en="Quick actions",
        description_zh="客户卡片上的快捷按钮：打电话、记拜访、建任务",
        description_en="Buttons on the customer card: call, log a visit, add a task",
    ),
    Feature(
        code=BEHAVIOUR_TRIGGERS,
        label_zh="行为触发任务",
        label_en="Behaviour-triggered tasks",
        description_zh="客户浏览、加购、高价值沉默、复购到期时自动生成跟进任务",
        description_en="Follow-up tasks made when customers browse, leave a cart, go silent or are due to repurchase",
        rules=BEHAVIOUR_RULES,
    ),
    Feature(
        code=PUSH,
        label_zh="推送通知",
        label_en="Push notifications",
        description_zh="提醒推送到手机通知栏（消息中心照常保留）",
        description_en="Reminders pushed to the phone's notification tray (the message centre keeps them either way)",
    ),
    Feature(
        code=FEEDBACK,
        label_zh="意见反馈",
        label_en="Feedback",
        description_zh="在应用内提交意见和截图",
        description_en="Send suggestions and screenshots from inside the app",
    ),
)

_RULE_TEXT: dict[str, tuple[str, str, str, str]] = {
    "stage_idle": (
        "商机停滞提醒",
        "Stalled deal",
        "商机在某阶段停留过久时提醒负责人",
        "Tells the owner a deal sat too long",
    ),
    "stage_escalation": (
        "商机停滞升级",
        "Stalled deal escalation",
        "停滞时间加倍后提醒店长",
        "Tells the store manager when a deal stalls twice as long",
    ),
    "close_near": ("预计成交日临近", "Close date near", "预计成交日前3天提醒", "Three days before the expected close"),
    "contract_end": ("合同到期提醒", "Contract ending", "合同到期前7天提醒", "Seven days before a contract ends"),
    "no_follow_up": (
        "48小时未跟进",
        "No follow-up in 48 h",
        "接触客户后48小时内没有跟进时提醒",
        "When a contact has no follow-up within 48 hours",
    ),
    "complaint_history": (
        "投诉调取历史超时",
        "Complaint history overdue",
        "投诉1小时内未调取客户历史",
        "A complaint's history not retrieved within an hour",
    ),
    "complaint_solution": (
        "投诉方案超时",
        "Complaint solution overdue",
        "投诉2小时内未给出方案",
        "No first solution to a complaint within two hours",
    ),
    "complaint_callback": (
        "投诉满意度回访",
        "Complaint call-back",
        "投诉解决后24小时内回访",
        "A satisfaction call within 24 hours of solving",
    ),
    "browse_interest": (
        "浏览兴趣跟进",
        "Browsing follow-up",
        "客户浏览某品类超过5分钟后跟进",
        "After a customer browses a category for over five minutes",
    ),
    "abandoned_cart": ("加购未下单跟进", "Abandoned cart", "加购24小时未下单时跟进", "A cart left for 24 hours"),
    "vip_silent": (
        "高价值客户沉默",
        "Silent high-value customer",
        "高价值客户30天未联系时提醒",
        "A high-value customer not contacted for 30 days",
    ),
    "repurchase_due": (
        "复购提醒",
        "Repurchase due",
        "消耗品到了复购周期时提醒",
        "When a consumable is due to be bought again",
    ),
}


def rule_feature(code: str) -> str:
    return f"{RULE_PREFIX}{code}"


RULE_FEATURES: tuple[Feature, ...] = tuple(
    Feature(
        code=rule_feature(code),
        label_zh=f"规则：{_RULE_TEXT[code][0]}",
        label_en=f"Rule: {_RULE_TEXT[code][1]}",
        description_zh=_RULE_TEXT[code][2],
        description_en=_RULE_TEXT[code][3],
        rule=code,
    )
    for code in RULE_CODES
)
FEATURES: tuple[Feature, ...] = APP_FEATURES + RULE_FEATURES
FEATURES_BY_CODE: dict[str, Feature] = {f.code: f for f in FEATURES}


def enabled(switches: Mapping[str, bool], code: str) -> bool:
    """Whether ``code`` is on, given a store's own switches (feature → enabled): on without one."""
    return switches.get(code, True)


__all__ = [
    "APP_FEATURES",
    "BEHAVIOUR_RULES",
    "BEHAVIOUR_TRIGGERS",
    "FEATURES",
    "FEATURES_BY_CODE",
    "FEEDBACK",
    "PUSH",
    "QUICK_ACTIONS",
    "RULE_CODES",
    "RULE_FEATURES",
    "Feature",
    "enabled",
    "rule_feature",
]
