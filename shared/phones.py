"""Phone numbers: normalise to E.164 (phonenumbers, default region CN) and mask for display."""

from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    pass


def normalise(raw: str, *, region: str = "CN") -> tuple[str, str]:
    """Return (E.164 number, national significant number) or raise PhoneError saying why."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError(f"not a valid phone number: {raw!r}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.national_significant_number(parsed)


def mask(number: str | None) -> str | None:
    """'+8613812345678' → '138****5678': enough to recognise, not enough to call."""
    if not number:
        return number
    digits = number[3:] if number.startswith("+86") else number.lstrip("+")
    if len(digits) <= 6:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def display(number: str | None) -> str | None:
    """How a rep reads a number: '+8613812345678' → '138 1234 5678', a masked '138****5678' →
    '138 **** 5678'; other numbers as stored."""
    if not number:
        return number
    digits = number[3:] if number.startswith("+86") else number
    if len(digits) == 11 and digits[0] == "1":
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return number
