"""matrix: lists-of-lists linear algebra."""

from matrix.ops import add, determinant, identity, multiply, scale, trace, transpose

__all__ = ["add", "determinant", "identity", "multiply", "scale", "trace", "transpose"]
