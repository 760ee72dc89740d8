from roman import from_base, from_roman, to_base, to_roman


def _raises(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_to_roman_simple():
    assert to_roman(3) == "III"
    assert to_roman(8) == "VIII"


def test_to_roman_subtractive():
    assert to_roman(4) == "IV"
    assert to_roman(9) == "IX"
    assert to_roman(40) == "XL"
    assert to_roman(900) == "CM"


def test_to_roman_large():
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(3999) == "MMMCMXCIX"


def test_to_roman_range():
    assert _raises(to_roman, 0)
    assert _raises(to_roman, 4000)
    assert to_roman(1) == "I"


def test_from_roman():
    assert from_roman("MCMXCIV") == 1994
    assert from_roman("xiv") == 14


def test_from_roman_repeated():
    assert from_roman("XXVII") == 27


def test_from_roman_bad_letter():
    assert _raises(from_roman, "XIZ")


def test_roundtrip():
    for n in (1, 2, 14, 49, 444, 1666, 2024, 3888):
        assert from_roman(to_roman(n)) == n


def test_to_base_binary():
    assert to_base(10, 2) == "1010"


def test_to_base_hex_negative():
    assert to_base(-255, 16) == "-ff"


def test_to_base_zero():
    assert to_base(0, 7) == "0"


def test_to_base_36():
    assert to_base(35, 36) == "z"


def test_from_base():
    assert from_base("ff", 16) == 255
    assert from_base("-101", 2) == -5


def test_from_base_bad_digit():
    assert _raises(from_base, "12", 2)


def test_bad_base():
    assert _raises(to_base, 5, 1)
    assert _raises(from_base, "5", 37)
    assert to_base(5, 36) == "5"
