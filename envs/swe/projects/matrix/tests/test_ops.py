from matrix import add, determinant, identity, multiply, scale, trace, transpose


def _raises(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_identity():
    assert identity(3) == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_transpose_rect():
    assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]


def test_add():
    assert add([[1, 2], [3, 4]], [[10, 20], [30, 40]]) == [[11, 22], [33, 44]]


def test_add_mismatch():
    assert _raises(add, [[1, 2]], [[1], [2]])


def test_scale():
    assert scale([[1, -2], [0, 3]], 3) == [[3, -6], [0, 9]]


def test_multiply():
    assert multiply([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]


def test_multiply_rect():
    assert multiply([[1, 2, 3]], [[1], [2], [3]]) == [[14]]


def test_multiply_identity():
    m = [[2, 3], [4, 5]]
    assert multiply(m, identity(2)) == m


def test_multiply_mismatch():
    assert _raises(multiply, [[1, 2]], [[1, 2]])


def test_trace():
    assert trace([[1, 2], [3, 4]]) == 5


def test_trace_not_square():
    assert _raises(trace, [[1, 2, 3], [4, 5, 6]])


def test_determinant_2x2():
    assert determinant([[3, 8], [4, 6]]) == -14


def test_determinant_3x3():
    assert determinant([[6, 1, 1], [4, -2, 5], [2, 8, 7]]) == -306


def test_determinant_1x1():
    assert determinant([[5]]) == 5


def test_determinant_4x4_identity():
    assert determinant(identity(4)) == 1


def test_determinant_not_square():
    assert _raises(determinant, [[1, 2]])
