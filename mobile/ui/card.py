"""The 360° customer card with its quick actions, and the opportunity page."""

from __future__ import annotations

import flet as ft

from mobile import queries
from mobile.state import DUE_CHOICES, PROFILE_FIELDS, AppState, money
from mobile.ui.common import Field, header, local_time, muted, pill
from mobile.ui.screens import category_text
from shared.enums import ComplaintCategory
from shared.phones import display as display_phone
from shared.wire import Standing

TIER_COLOURS = {"high": ft.Colors.DEEP_ORANGE_700, "regular": ft.Colors.BLUE_700, "new": ft.Colors.GREEN_700}
COMPLAINT_COLOURS = {
    "open": ft.Colors.RED_700,
    "in_progress": ft.Colors.ORANGE_800,
    "solved": ft.Colors.GREEN_700,
    "closed": ft.Colors.GREY_700,
}


def _stage_name(state: AppState, zh: str | None, en: str | None) -> str:
    return (zh if state.locale == "zh" else en) or zh or en or "—"


# --- quick actions --------------------------------------------------------------------------------


def _due_chips(state: AppState) -> ft.Control:
    return ft.Row(
        [
            ft.Chip(
                key=f"due-{choice}",
                label=ft.Text(state.tr(f"action.due_{choice}")),
                selected=state.draft_due == choice,
                on_select=lambda e, choice=choice: setattr(state, "draft_due", choice),
            )
            for choice in DUE_CHOICES
        ],
        wrap=True,
    )


def _text(state: AppState, key: str, label: str, **kw) -> ft.Control:
    return Field(key, label, "", state.set_draft_text, **kw)


def action_sheet(state: AppState, customer_id: str, opportunity: queries.OpportunityView | None) -> ft.Control | None:
    """The open quick-action form (second tap saves)."""
    if state.sheet is None:
        return None
    body: list[ft.Control] = []
    save = None
    if state.sheet == "note":
        body = [_text(state, "sheet-text", state.tr("action.note"), multiline=True, autofocus=True)]
        save = lambda e: state.save_note(customer_id)  # noqa: E731
    elif state.sheet == "task":
        body = [_text(state, "sheet-text", state.tr("action.task_title"), autofocus=True), _due_chips(state)]
        save = lambda e: state.save_task(customer_id, opportunity.id if opportunity else None)  # noqa: E731
    elif state.sheet == "opportunity":
        body = [
            _text(state, "sheet-text", state.tr("action.opportunity_title"), autofocus=True),
            Field("sheet-amount", state.tr("action.amount"), "", state.set_draft_amount, number=True),
        ]
        save = lambda e: state.save_opportunity(customer_id)  # noqa: E731
    elif state.sheet == "profile":
        body = [
            Field(
                f"profile-{name}",
                state.tr(f"profile.{name}"),
                state.profile_seed.get(name, ""),
                state.profile_setter(name),
            )
            for name in PROFILE_FIELDS
        ]
        save = lambda e: state.save_profile(customer_id)  # noqa: E731
    elif state.sheet == "tag":
        body = [_text(state, "sheet-text", state.tr("tags.label"), autofocus=True)]
        save = lambda e: state.add_tag(customer_id)  # noqa: E731
    elif state.sheet == "complaint":
        body = [
            ft.Row(
                [
                    ft.Chip(
                        key=f"complaint-category-{c.value}",
                        label=ft.Text(category_text(state, c.value)),
                        selected=state.draft_category == c.value,
                        on_select=lambda e, c=c.value: state.set_draft_category(c),
                    )
                    for c in ComplaintCategory
                ],
                wrap=True,
                spacing=6,
            ),
            _text(state, "sheet-text", state.tr("complaint.description"), multiline=True, autofocus=True),
        ]
        save = lambda e: state.save_complaint(customer_id)  # noqa: E731
    elif state.sheet in ("complaint_respond", "complaint_solve"):
        label = state.tr("complaint.solution" if state.sheet == "complaint_respond" else "complaint.how_solved")
        body = [Field("sheet-text", label, state.draft_text, state.set_draft_text, multiline=True, autofocus=True)]
        save = lambda e: state.save_complaint_step()  # noqa: E731
    elif state.sheet == "complaint_callback":
        body = [
            muted(state.tr("complaint.rating")),
            ft.Row(
                [
                    ft.Chip(
                        key=f"rating-{n}",
                        label=ft.Text("★" * n),
                        selected=state.draft_rating == n,
                        on_select=lambda e, n=n: state.set_draft_rating(n),
                    )
                    for n in range(1, 6)
                ],
                wrap=True,
                spacing=6,
            ),
            _text(state, "sheet-text", state.tr("complaint.callback_note"), multiline=True),
        ]
        save = lambda e: state.save_complaint_step()  # noqa: E731
    elif state.sheet == "move" and opportunity is not None:
        body = [stage_buttons(state, opportunity)]
        if state.draft_stage and next(
            (s for s in state.stages() if s.code == state.draft_stage and s.kind == "lost"), None
        ):
            body.append(_text(state, "sheet-text", state.tr("opp.lost_reason"), autofocus=True))
            save = lambda e: state.move_stage(opportunity.id, state.draft_stage)  # noqa: E731
    buttons: list[ft.Control] = [
        ft.TextButton(
            key="sheet-cancel", content=ft.Text(state.tr("action.cancel")), on_click=lambda e: state.close_sheet()
        )
    ]
    if save is not None:
        buttons.insert(
            0, ft.FilledButton(key="sheet-save", content=ft.Text(state.tr("action.save")), on_click=save, height=44)
        )
    if state.sheet_error:
        body.append(ft.Text(state.sheet_error, color=ft.Colors.RED_700, key="sheet-error"))
    return ft.Container(
        ft.Column([*body, ft.Row(buttons, spacing=8)], spacing=8),
        padding=12,
        border_radius=12,
        border=ft.Border.all(1, ft.Colors.BLUE_200),
        key="sheet",
    )


def stage_buttons(state: AppState, opportunity: queries.OpportunityView) -> ft.Control:
    """One tap moves to an open/won stage; 'lost' asks for the reason first."""
    buttons: list[ft.Control] = []
    for stage in state.stages():
        if stage.code == opportunity.stage:
            continue
        buttons.append(
            ft.OutlinedButton(
                key=f"stage-{stage.code}",
                content=ft.Text(_stage_name(state, stage.name_zh, stage.name_en)),
                on_click=lambda e, code=stage.code: state.move_stage(opportunity.id, code),
                height=44,
            )
        )
    return ft.Column([muted(state.tr("opp.move_to")), ft.Row(buttons, wrap=True, spacing=6)], spacing=4)


def quick_actions(state: AppState, customer_id: str, open_opps: list[queries.OpportunityView]) -> ft.Control:
    def button(key: str, icon: str, label: str, on_click) -> ft.Control:
        return ft.Button(key=key, icon=icon, content=ft.Text(label), on_click=on_click, height=44)

    items = [
        button("qa-visit", ft.Icons.STOREFRONT, state.tr("action.visit"), lambda e: state.log_visit(customer_id)),
        button("qa-call", ft.Icons.PHONE_IN_TALK, state.tr("action.call"), lambda e: state.log_call(customer_id)),
        button("qa-note", ft.Icons.EDIT_NOTE, state.tr("action.note"), lambda e: state.open_sheet("note")),
        button("qa-task", ft.Icons.ADD_TASK, state.tr("action.task"), lambda e: state.open_sheet("task")),
        button(
            "qa-opportunity",
            ft.Icons.ADD_CHART,
            state.tr("action.opportunity"),
            lambda e: state.open_sheet("opportunity"),
        ),
    ]
    complain = lambda e: state.open_sheet("complaint")  # noqa: E731
    items.append(button("qa-complaint", ft.Icons.REPORT_PROBLEM, state.tr("complaint.new"), complain))
    if len(open_opps) == 1:
        items.append(
            button("qa-move", ft.Icons.TRENDING_UP, state.tr("action.move"), lambda e: state.open_sheet("move"))
        )
    return ft.Row(items, wrap=True, spacing=6, run_spacing=6)


# --- the card -------------------------------------------------------------------------------------


def _dial(state: AppState, number: str):
    async def handler(e: ft.Event) -> None:  # Flet awaits only `async def` handlers
        await state.call(number)

    return handler


def _complaint_rows(state: AppState, c: queries.ComplaintView) -> list[ft.Control]:
    """A complaint: status, category, when, what; what was offered and the call-back; the loop's
    next steps as buttons, and the steps past their time in red."""
    rows: list[ft.Control] = [
        ft.Row(
            [
                pill(state.tr(f"complaint.{c.status}"), COMPLAINT_COLOURS.get(c.status, ft.Colors.GREY_700)),
                ft.Text(
                    " · ".join(
                        x
                        for x in (category_text(state, c.category), local_time(state, c.opened_at), c.description)
                        if x
                    ),
                    size=13,
                    expand=True,
                ),
            ]
        )
    ]
    if c.resolution:
        rows.append(muted(state.tr("complaint.resolution", text=c.resolution)))
    if c.satisfaction is not None:
        rows.append(muted(state.tr("complaint.callback", rating=c.satisfaction, note=c.callback_note)))
    if c.late:
        steps = "、".join(state.tr(f"complaint.step.{step}") for step in c.late)
        rows.append(ft.Text(state.tr("complaint.late", steps=steps), size=12, color=ft.Colors.RED_700))
    if c.next_steps:
        rows.append(
            ft.Row(
                [
                    ft.OutlinedButton(
                        key=f"complaint-{step}-{c.id}",
                        content=ft.Text(state.tr(f"complaint.step.{step}")),
                        on_click=lambda e, step=step: state.open_complaint_step(c.id, step),
                        height=40,
                    )
                    for step in c.next_steps
                ],
                wrap=True,
                spacing=6,
            )
        )
    return rows


def _complaint_banner(state: AppState, complaints: list[queries.ComplaintView]) -> ft.Control | None:
    """The complaint history pops up with the customer: open complaints first thing on the card."""
    live = [c for c in complaints if c.live]
    if not live:
        return None
    latest = live[0]
    what = " · ".join(x for x in (category_text(state, latest.category), latest.description) if x)
    return ft.Container(
        ft.Text(
            state.tr("complaint.banner", live=len(live), total=len(complaints), latest=what),
            color=ft.Colors.RED_900,
            size=13,
        ),
        bgcolor=ft.Colors.with_opacity(0.08, ft.Colors.RED_700),
        border_radius=8,
        padding=8,
        key="complaint-banner",
    )


SEGMENT_COLOURS = {
    "new": ft.Colors.GREEN_700,
    "repeat": ft.Colors.BLUE_700,
    "high_value": ft.Colors.DEEP_ORANGE_700,
    "dormant": ft.Colors.AMBER_900,
    "lost": ft.Colors.GREY_700,
}
HEALTH_COLOURS = {"healthy": ft.Colors.GREEN_700, "watch": ft.Colors.AMBER_900, "at_risk": ft.Colors.RED_700}


def _standing(state: AppState, s: Standing, amount_total) -> list[ft.Control]:
    """Segment, health, RFM, the expected next purchase and a win-back hint (shared/segments.py)."""
    line: list[ft.Control] = [
        ft.Container(pill(state.tr(f"segment.{s.group}"), SEGMENT_COLOURS[s.group]), key="card-segment"),
        ft.Container(
            pill(
                state.tr("card.health", score=s.health, level=state.tr(f"health.{s.health_level}")),
                HEALTH_COLOURS[s.health_level],
            ),
            key="card-health",
        ),
    ]
    if s.rfm:
        line.append(
            ft.Text(state.tr("card.rfm", code=s.rfm, r=s.recency, f=s.frequency, m=s.monetary), size=12, key="card-rfm")
        )
    rows: list[ft.Control] = [ft.Row(line, wrap=True, spacing=6)]
    if s.next_purchase_on is not None:
        due = s.next_purchase_on <= state.now().date()
        when = s.next_purchase_on.isoformat()
        rows.append(
            ft.Text(
                state.tr("card.next_purchase_due" if due else "card.next_purchase", date=when),
                size=13,
                color=ft.Colors.DEEP_ORANGE_700 if due else None,
                key="card-next-purchase",
            )
        )
    if s.win_back:
        rows.append(
            ft.Text(
                state.tr("card.win_back", days=s.days_since_order, total=money(amount_total)),
                size=13,
                color=ft.Colors.RED_700,
                key="card-win-back",
            )
        )
    return rows


@ft.component
def CardScreen(state: AppState, customer_id: str) -> ft.Control:
    card = state.card(customer_id)
    if card is None:
        return ft.Column([muted(state.tr("card.missing"))])
    p = card.profile
    value = card.value
    open_opps = [o for o in card.opportunities if o.stage_kind == "open"]
    tier = value.tier if value.tier in TIER_COLOURS else "regular"
    following = state.is_following(customer_id)
    head: list[ft.Control] = [
        ft.Row(
            [
                ft.Text(p["name"], size=24, weight=ft.FontWeight.BOLD, key="card-name"),
                pill(state.tr(f"card.tier.{tier}"), TIER_COLOURS[tier]),
                ft.TextButton(
                    key="edit-profile",
                    icon=ft.Icons.EDIT,
                    content=ft.Text(state.tr("profile.edit")),
                    on_click=lambda e: state.edit_profile(customer_id),
                ),
                ft.TextButton(
                    key="follow",
                    icon=ft.Icons.NOTIFICATIONS_ACTIVE if following else ft.Icons.NOTIFICATIONS_NONE,
                    content=ft.Text(state.tr("card.following" if following else "card.follow")),
                    on_click=lambda e: state.toggle_follow(customer_id),
                ),
            ],
            wrap=True,
        ),
        muted(
            " · ".join(
                x
                for x in (
                    state.tr("card.owner", name=p.get("owner_name") or "—"),
                    state.tr("card.store", store=p.get("store_code") or "—"),
                    " ".join(x for x in (p.get("city"), p.get("district")) if x),
                )
                if x
            )
        ),
    ]
    for phone in card.phones:
        call = None
        if not phone.masked and phone.number:
            call = ft.TextButton(
                key=f"call-{phone.id}",
                icon=ft.Icons.CALL,
                content=ft.Text(state.tr("card.call")),
                on_click=_dial(state, phone.number),
            )
        head.append(
            ft.Row(
                [
                    ft.Text(display_phone(phone.number) or "—", size=16, key=f"phone-{phone.id}"),
                    *([call] if call else []),
                ]
            )
        )
    if p.get("address"):
        head.append(muted(p["address"]))
    tags: list[ft.Control] = [
        ft.Chip(
            key=f"tag-{tag['id']}",
            label=ft.Text(tag["tag"], size=12),
            on_delete=lambda e, t=tag: state.remove_tag(t["id"], t["tag"]),
        )
        for tag in card.tags
    ]
    tags.append(
        ft.Chip(
            key="add-tag",
            label=ft.Text(state.tr("tags.add"), size=12),
            leading=ft.Icon(ft.Icons.ADD, size=16),
            on_click=lambda e: state.open_sheet("tag"),
        )
    )
    head.append(ft.Row(tags, wrap=True, spacing=4))
    head.append(
        ft.Text(
            state.tr(
                "card.value",
                m12=money(value.amount_12m),
                total=money(value.amount_total),
                store=money(value.store_amount),
                online=money(value.online_amount),
            ),
            size=13,
        )
    )
    head.extend(_standing(state, value.standing, value.amount_total))
    suggestions = state.cross_sell(customer_id)
    if suggestions:
        names = "、".join(s["name_zh"] if state.locale == "zh" else s["name_en"] for s in suggestions)
        head.append(ft.Text(state.tr("card.cross_sell", items=names), color=ft.Colors.DEEP_PURPLE_700, size=13))
    rows: list[ft.Control] = list(head)
    banner = _complaint_banner(state, card.complaints)
    if banner is not None:
        rows.insert(2, banner)  # under the name and the owner: the first thing a rep reads
    if state.feature_on("quick_actions"):  # head office may not have switched them on for the store yet
        rows.append(quick_actions(state, customer_id, open_opps))
    sheet = action_sheet(state, customer_id, open_opps[0] if len(open_opps) == 1 else None)
    if sheet is not None:
        rows.append(sheet)

    rows.append(header(f"{state.tr('card.opportunities')} · {len(card.opportunities)}"))
    if not card.opportunities:
        rows.append(muted(state.tr("card.no_opportunities")))
    for o in card.opportunities:
        rows.append(
            ft.ListTile(
                key=f"opp-{o.id}",
                title=ft.Text(o.title),
                subtitle=ft.Text(
                    f"{_stage_name(state, o.stage_name_zh, o.stage_name_en)} · ¥{money(o.amount)}"
                    + (f" · {state.tr('card.pending')}" if o.pending else "")
                ),
                trailing=ft.Icon(ft.Icons.CHEVRON_RIGHT),
                on_click=lambda e, oid=o.id: state.open_opportunity(oid),
            )
        )
    rows.append(header(f"{state.tr('card.tasks')} · {len(card.tasks)}"))
    if not card.tasks:
        rows.append(muted(state.tr("card.no_tasks")))
    for task in card.tasks:
        due = state.tr("today.overdue") if task.overdue else local_time(state, task.due_at)
        rows.append(
            ft.Row(
                [
                    ft.Column(
                        [
                            ft.Text(task.title, size=14),
                            ft.Text(
                                due + (f" · {state.tr('card.pending')}" if task.pending else ""),
                                size=12,
                                color=ft.Colors.RED_700 if task.overdue else ft.Colors.GREY_700,
                            ),
                        ],
                        spacing=0,
                        expand=True,
                    ),
                    ft.TextButton(
                        key=f"complete-{task.id}",
                        content=ft.Text(state.tr("today.complete")),
                        on_click=lambda e, t=task: state.complete_task(t),
                    ),
                ]
            )
        )
    rows.append(header(f"{state.tr('card.complaints')} · {len(card.complaints)}"))
    if not card.complaints:
        rows.append(muted(state.tr("card.no_complaints")))
    for c in card.complaints:
        rows.extend(_complaint_rows(state, c))
    rows.append(header(f"{state.tr('card.purchases')} · {value.order_count}"))
    if not card.orders:
        rows.append(muted(state.tr("card.no_purchases")))
    for order in card.orders:
        lines = "、".join(f"{line.product_name}×{line.quantity}" for line in order.lines)
        rows.append(
            ft.Column(
                [
                    ft.Row(
                        [
                            pill(state.tr(f"channel.{order.channel}")),
                            ft.Text(local_time(state, order.ordered_at, "%Y-%m-%d"), size=13),
                            ft.Text(f"¥{money(order.amount)}", weight=ft.FontWeight.W_600, size=13),
                        ],
                        spacing=8,
                    ),
                    ft.Text(lines, size=13, color=ft.Colors.GREY_800),
                ],
                spacing=2,
            )
        )
    rows.append(header(f"{state.tr('card.interactions')} · {len(card.interactions)}"))
    if not card.interactions:
        rows.append(muted(state.tr("card.no_interactions")))
    for i in card.interactions:
        who = i.user_name or (state.tr(f"channel.{i.channel}") if i.channel else "")
        detail = i.body or (f"{(i.duration_seconds or 0) // 60} min" if i.duration_seconds else "")
        rows.append(
            ft.Row(
                [
                    pill(state.tr(f"kind.{i.kind}")),
                    ft.Text(
                        " · ".join(x for x in (local_time(state, i.occurred_at), who, detail) if x)
                        + (f" · {state.tr('card.pending')}" if i.pending else ""),
                        size=13,
                        expand=True,
                    ),
                ]
            )
        )
    return ft.Column(rows, spacing=6, scroll=ft.ScrollMode.AUTO, expand=True, key="card")


# --- the opportunity ------------------------------------------------------------------------------


@ft.component
def OpportunityScreen(state: AppState, opportunity_id: str) -> ft.Control:
    detail = state.opportunity(opportunity_id)
    if detail is None:
        return ft.Column([muted(state.tr("opp.missing"))])
    o = detail.opportunity
    rows: list[ft.Control] = [
        ft.Text(o.title, size=22, weight=ft.FontWeight.BOLD, key="opp-title"),
        ft.TextButton(
            content=ft.Text(detail.customer_name or "—"), on_click=lambda e: state.open_customer(detail.customer_id)
        ),
        ft.Row(
            [
                pill(_stage_name(state, o.stage_name_zh, o.stage_name_en), ft.Colors.BLUE_700),
                ft.Text(state.tr("opp.amount", amount=money(o.amount))),
            ],
            wrap=True,
        ),
    ]
    if o.stage_kind == "open":
        rows.append(muted(state.tr("opp.in_stage", days=int(detail.days_in_stage))))
    else:
        rows.append(muted(state.tr("opp.closed") + (f" · {o.lost_reason}" if o.lost_reason else "")))
    rows.append(muted(state.tr("opp.expected_close", date=o.expected_close_date or "—")))
    rows.append(muted(state.tr("opp.contract_end", date=o.contract_end_date or "—")))
    if state.sheet == "details":
        rows.append(
            ft.Container(
                ft.Column(
                    [
                        *(
                            [
                                Field(
                                    "sheet-amount",
                                    state.tr("action.amount"),
                                    state.seed_amount,
                                    state.set_draft_amount,
                                    number=True,
                                )
                            ]
                            if o.stage_kind == "open"
                            else []
                        ),
                        *(
                            [
                                Field(
                                    "sheet-close",
                                    state.tr("opp.expected_close_label"),
                                    state.seed_close,
                                    state.set_draft_close,
                                )
                            ]
                            if o.stage_kind == "open"
                            else []
                        ),
                        Field(
                            "sheet-contract",
                            state.tr("opp.contract_end_label"),
                            state.seed_contract,
                            state.set_draft_contract,
                        ),
                        *(
                            [ft.Text(state.sheet_error, color=ft.Colors.RED_700, key="sheet-error")]
                            if state.sheet_error
                            else []
                        ),
                        ft.Row(
                            [
                                ft.FilledButton(
                                    key="sheet-save",
                                    content=ft.Text(state.tr("action.save")),
                                    on_click=lambda e: state.save_details(o),
                                ),
                                ft.TextButton(
                                    key="sheet-cancel",
                                    content=ft.Text(state.tr("action.cancel")),
                                    on_click=lambda e: state.close_sheet(),
                                ),
                            ]
                        ),
                    ],
                    spacing=8,
                ),
                padding=12,
                border_radius=12,
                border=ft.Border.all(1, ft.Colors.BLUE_200),
                key="sheet",
            )
        )
    else:
        rows.append(
            ft.TextButton(
                key="opp-edit",
                icon=ft.Icons.EDIT,
                content=ft.Text(state.tr("opp.edit")),
                on_click=lambda e: state.edit_details(o),
            )
        )
    # the stage path: every stage in order, the current one marked
    path: list[ft.Control] = []
    for stage in state.stages():
        current = stage.code == o.stage
        path.append(
            ft.Container(
                ft.Text(
                    _stage_name(state, stage.name_zh, stage.name_en),
                    size=12,
                    color=ft.Colors.WHITE if current else ft.Colors.BLUE_GREY_700,
                ),
                padding=ft.Padding.symmetric(horizontal=8, vertical=4),
                border_radius=10,
                bgcolor=ft.Colors.BLUE_700 if current else ft.Colors.with_opacity(0.08, ft.Colors.BLUE_GREY_700),
            )
        )
    rows.append(ft.Row(path, wrap=True, spacing=4))
    if o.stage_kind == "open":
        rows.append(stage_buttons(state, o))
        if state.sheet == "move" and state.draft_stage:
            rows.append(
                _text(state, "sheet-text", state.tr("opp.lost_reason"), autofocus=True),
            )
            rows.append(
                ft.Row(
                    [
                        ft.FilledButton(
                            key="sheet-save",
                            content=ft.Text(state.tr("action.save")),
                            on_click=lambda e: state.move_stage(o.id, state.draft_stage),
                        ),
                        ft.TextButton(
                            content=ft.Text(state.tr("action.cancel")), on_click=lambda e: state.close_sheet()
                        ),
                    ]
                )
            )
        if state.sheet_error and state.sheet != "details":
            rows.append(ft.Text(state.sheet_error, color=ft.Colors.RED_700, key="sheet-error"))
    rows.append(header(state.tr("opp.history")))
    for step in detail.history:
        rows.append(
            ft.Text(
                f"{_stage_name(state, step.name_zh, step.name_en)} · {local_time(state, step.entered_at, '%Y-%m-%d')}"
                f" · {state.tr('opp.days', days=round(step.days, 1))}",
                size=13,
            )
        )
    return ft.Column(rows, spacing=6, scroll=ft.ScrollMode.AUTO, expand=True, key="opportunity")
