"""Matrix operations on lists of row lists."""


def _shape(m):
    return len(m), len(m[0]) if m else 0


def identity(n):
    """The ``n`` x ``n`` identity matrix."""
    return [[1 if i == j else 0 for j in range(n)] for i in range(n)]


def transpose(m):
    """Rows become columns."""
    rows, cols = _shape(m)
    return [[m[i][j] for i in range(rows)] for j in range(cols)]


def add(a, b):
    """Element-wise sum; ValueError when the shapes differ."""
    if _shape(a) != _shape(b):
        raise ValueError("shape mismatch")
    return [[x + y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]


def scale(m, k):
    """Every element times ``k``."""
    return [[k * x for x in row] for row in m]


def multiply(a, b):
    """Matrix product; ValueError when the inner sizes differ."""
    rows_a, cols_a = _shape(a)
    rows_b, cols_b = _shape(b)
    if cols_a != rows_b:
        raise ValueError("inner dimensions differ")
    out = []
    for i in range(rows_a):
        row = []
        for j in range(cols_b):
            total = 0
            for k in range(cols_a):
                total += a[i][k] * b[k][j]
            row.append(total)
        out.append(row)
    return out


def trace(m):
    """Sum of the diagonal of a square matrix."""
    rows, cols = _shape(m)
    if rows != cols:
        raise ValueError("trace needs a square matrix")
    return sum(m[i][i] for i in range(rows))


def determinant(m):
    """Determinant by cofactor expansion along the first row."""
    rows, cols = _shape(m)
    if rows != cols:
        raise ValueError("determinant needs a square matrix")
    if rows == 1:
        return m[0][0]
    if rows == 2:
        return m[0][0] * m[1][1] - m[0][1] * m[1][0]
    total = 0
    for j in range(cols):
        minor = [row[:j] + row[j + 1:] for row in m[1:]]
        sign = -1 if j % 2 else 1
        total += sign * m[0][j] * determinant(minor)
    return total
