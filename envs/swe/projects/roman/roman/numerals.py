"""Conversion between integers and Roman numerals (1..3999)."""

SYMBOLS = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
    (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]
VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def to_roman(number):
    """The Roman numeral of ``number``; ValueError outside 1..3999."""
    if not 1 <= number <= 3999:
        raise ValueError("number out of range")
    out = []
    for value, symbol in SYMBOLS:
        while number >= value:
            out.append(symbol)
            number -= value
    return "".join(out)


def from_roman(text):
    """The integer value of a Roman numeral; ValueError on unknown letters."""
    text = text.upper()
    total = 0
    prev = 0
    for ch in reversed(text):
        if ch not in VALUES:
            raise ValueError("bad numeral letter: " + ch)
        value = VALUES[ch]
        if value < prev:
            total -= value
        else:
            total += value
            prev = value
    return total
