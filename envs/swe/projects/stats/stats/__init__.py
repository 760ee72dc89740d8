"""stats: descriptive statistics on lists of numbers."""

from stats.describe import mean, median, mode, percentile, variance, zscores

__all__ = ["mean", "median", "mode", "percentile", "variance", "zscores"]
