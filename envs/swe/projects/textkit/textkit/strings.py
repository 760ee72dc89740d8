"""String helpers: slugs, word counts, wrapping and truncation."""


def slugify(text, sep="-"):
    """Lower-case ``text`` and join its alphanumeric runs with ``sep``."""
    words = []
    current = ""
    for ch in text.lower():
        if ch.isalnum():
            current += ch
        elif current:
            words.append(current)
            current = ""
    if current:
        words.append(current)
    return sep.join(words)


def count_words(text):
    """Map each lower-cased word to how often it occurs."""
    counts = {}
    for word in text.lower().split():
        word = word.strip(".,;:!?\"'")
        if not word:
            continue
        counts[word] = counts.get(word, 0) + 1
    return counts


def wrap_text(text, width):
    """Greedy word wrap: lines no longer than ``width`` unless a word is longer."""
    if width < 1:
        raise ValueError("width must be positive")
    lines = []
    line = ""
    for word in text.split():
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line = line + " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def truncate(text, limit, ellipsis="..."):
    """Cut ``text`` to at most ``limit`` characters, ending with ``ellipsis`` when cut."""
    if len(text) <= limit:
        return text
    keep = limit - len(ellipsis)
    if keep <= 0:
        return ellipsis[:limit]
    return text[:keep] + ellipsis


def capitalize_words(text):
    """Upper-case the first letter of every space-separated word."""
    parts = text.split(" ")
    out = []
    for part in parts:
        if part:
            part = part[0].upper() + part[1:]
        out.append(part)
    return " ".join(out)


def is_palindrome(text):
    """Whether the letters and digits of ``text`` read the same both ways."""
    chars = [c.lower() for c in text if c.isalnum()]
    i, j = 0, len(chars) - 1
    while i < j:
        if chars[i] != chars[j]:
            return False
        i += 1
        j -= 1
    return True
