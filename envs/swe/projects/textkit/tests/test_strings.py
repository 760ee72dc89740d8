from textkit import capitalize_words, count_words, is_palindrome, slugify, truncate, wrap_text


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"


def test_slugify_separator():
    assert slugify("  Many   spaces here ", sep="_") == "many_spaces_here"


def test_slugify_digits():
    assert slugify("Version 2.0 release") == "version-2-0-release"


def test_slugify_empty():
    assert slugify("!!!") == ""


def test_count_words():
    assert count_words("The cat and the hat.") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_count_words_punctuation_only():
    assert count_words("... !!") == {}


def test_wrap_text():
    assert wrap_text("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]


def test_wrap_text_exact_width():
    assert wrap_text("aaaa bbbb", 9) == ["aaaa bbbb"]


def test_wrap_text_long_word():
    assert wrap_text("a verylongword b", 4) == ["a", "verylongword", "b"]


def test_wrap_text_bad_width():
    try:
        wrap_text("x", 0)
    except ValueError:
        return
    raise AssertionError("wrap_text(width=0) did not raise ValueError")


def test_truncate_short():
    assert truncate("short", 10) == "short"


def test_truncate_exact():
    assert truncate("abcde", 5) == "abcde"


def test_truncate_long():
    assert truncate("abcdefghij", 8) == "abcde..."


def test_truncate_tiny_limit():
    assert truncate("abcdefghij", 2) == ".."


def test_capitalize_words():
    assert capitalize_words("hello big world") == "Hello Big World"


def test_capitalize_words_keeps_spacing():
    assert capitalize_words("a  b") == "A  B"


def test_palindrome_true():
    assert is_palindrome("A man, a plan, a canal: Panama")


def test_palindrome_false():
    assert not is_palindrome("abca")


def test_palindrome_middle():
    assert not is_palindrome("abcxba")
