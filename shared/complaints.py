"""The complaint loop (REQUIREMENTS §4, §9): complaint → history retrieved (1 hour) → first
solution (2 hours) → solved → satisfaction call-back (24 hours after solving) → closed (archived).

What may happen next to a complaint is decided here, once: the server refuses a step with these
words and the phone refuses it offline with the same ones (so an edit the phone queued is not
refused later for another reason). The service-level times are the rules' defaults
(server/rules/service.py takes them from here; a company may change its rules).
"""

from __future__ import annotations

from typing import Literal

from shared.enums import ComplaintStatus

HISTORY_MINUTES = 60  # history retrieved within an hour of opening
SOLUTION_MINUTES = 120  # a first solution within two hours
CALLBACK_HOURS = 24  # the satisfaction call-back within a day of solving

Step = Literal["history", "respond", "solve", "callback"]
STEPS: tuple[Step, ...] = ("history", "respond", "solve", "callback")
LIVE = (ComplaintStatus.OPEN, ComplaintStatus.IN_PROGRESS)
MAX_TEXT = 4000


def refusal(
    step: str,
    *,
    status: str,
    resolution: str,
    text: str,
    satisfaction: int | None,
) -> tuple[str, str] | None:
    """Why ``step`` cannot be taken on a complaint in this state — (message, field) — or None."""
    if step not in STEPS:
        return f"step must be one of {', '.join(STEPS)}, got {step!r}", "step"
    if status == ComplaintStatus.CLOSED:
        return "the complaint is closed (its call-back is done)", "step"
    if step == "callback":
        if status != ComplaintStatus.SOLVED:
            return f"the call-back comes after solving; the complaint is {status}", "step"
        if satisfaction is None or not 1 <= satisfaction <= 5:
            return "satisfaction must be from 1 to 5", "satisfaction"
        return None
    if satisfaction is not None:
        return "satisfaction is given with the call-back only", "satisfaction"
    if step == "history":
        return None  # any time before closing; a second time changes nothing
    if status not in LIVE:
        return f"the complaint is {status} already", "step"
    if step == "respond" and not text.strip():
        return "say what the customer was offered", "text"
    if step == "solve" and not (text.strip() or resolution.strip()):
        return "say how the complaint was solved", "text"
    return None


def next_steps(status: str, history_retrieved: bool, responded: bool) -> list[Step]:
    """The steps the card offers now, in order."""
    if status == ComplaintStatus.CLOSED:
        return []
    if status == ComplaintStatus.SOLVED:
        return ["callback"]
    steps: list[Step] = [] if history_retrieved else ["history"]
    if not responded:
        steps.append("respond")
    steps.append("solve")
    return steps
