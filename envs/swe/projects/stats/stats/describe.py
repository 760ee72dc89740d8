"""Descriptive statistics without numpy."""


def mean(values):
    """Arithmetic mean; raises ValueError on an empty list."""
    if len(values) == 0:
        raise ValueError("mean of empty data")
    return sum(values) / len(values)


def median(values):
    """Middle value, or the mean of the two middle values for an even count."""
    if not values:
        raise ValueError("median of empty data")
    data = sorted(values)
    n = len(data)
    mid = n // 2
    if n % 2 == 1:
        return data[mid]
    return (data[mid - 1] + data[mid]) / 2


def mode(values):
    """Most common value; ties go to the smallest value."""
    if not values:
        raise ValueError("mode of empty data")
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = None
    for v in sorted(counts):
        if best is None or counts[v] > counts[best]:
            best = v
    return best


def variance(values, sample=False):
    """Population variance, or the sample variance (n - 1) when ``sample``."""
    n = len(values)
    if n < 2 and sample:
        raise ValueError("sample variance needs at least two values")
    m = mean(values)
    total = 0.0
    for v in values:
        total += (v - m) ** 2
    if sample:
        return total / (n - 1)
    return total / n


def percentile(values, p):
    """Linear-interpolated ``p``-th percentile, ``0 <= p <= 100``."""
    if not 0 <= p <= 100:
        raise ValueError("p must be in [0, 100]")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    frac = pos - lo
    return data[lo] + (data[hi] - data[lo]) * frac


def zscores(values):
    """Standard scores using the population standard deviation."""
    m = mean(values)
    sd = variance(values) ** 0.5
    if sd == 0:
        return [0.0 for _ in values]
    return [(v - m) / sd for v in values]
