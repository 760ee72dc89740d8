"""Integers in bases 2..36."""

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def to_base(number, base):
    """Digits of ``number`` in ``base`` (negative numbers get a leading minus)."""
    if not 2 <= base <= 36:
        raise ValueError("base must be in 2..36")
    if number == 0:
        return "0"
    sign = ""
    if number < 0:
        sign = "-"
        number = -number
    digits = []
    while number > 0:
        number, rem = divmod(number, base)
        digits.append(DIGITS[rem])
    return sign + "".join(reversed(digits))


def from_base(text, base):
    """Parse ``text`` written in ``base``; ValueError on a digit that is too large."""
    if not 2 <= base <= 36:
        raise ValueError("base must be in 2..36")
    text = text.strip().lower()
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    value = 0
    for ch in text:
        digit = DIGITS.find(ch)
        if digit < 0 or digit >= base:
            raise ValueError("bad digit " + ch)
        value = value * base + digit
    return -value if negative else value
