from stats import mean, median, mode, percentile, variance, zscores


def _raises(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ValueError:
        return True
    return False


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_mean_empty():
    assert _raises(mean, [])


def test_median_odd():
    assert median([3, 1, 2]) == 2


def test_median_even():
    assert median([4, 1, 3, 2]) == 2.5


def test_median_single():
    assert median([7]) == 7


def test_median_empty():
    assert _raises(median, [])


def test_mode():
    assert mode([1, 2, 2, 3, 3, 3]) == 3


def test_mode_tie_smallest():
    assert mode([5, 1, 5, 1, 9]) == 1


def test_mode_empty():
    assert _raises(mode, [])


def test_variance_population():
    assert variance([2, 4, 4, 4, 5, 5, 7, 9]) == 4.0


def test_variance_sample():
    assert variance([1, 2, 3, 4], sample=True) == 5 / 3


def test_variance_sample_too_short():
    assert _raises(variance, [1], sample=True)


def test_percentile_median():
    assert percentile([1, 2, 3, 4, 5], 50) == 3


def test_percentile_interpolates():
    assert percentile([10, 20, 30, 40], 25) == 17.5


def test_percentile_ends():
    assert percentile([3, 1, 2], 0) == 1
    assert percentile([3, 1, 2], 100) == 3


def test_percentile_single():
    assert percentile([4], 90) == 4


def test_percentile_bad_p():
    assert _raises(percentile, [1, 2], 101)
    assert _raises(percentile, [1, 2], -1)


def test_zscores():
    assert zscores([2, 4, 4, 4, 5, 5, 7, 9]) == [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]


def test_zscores_constant():
    assert zscores([3, 3, 3]) == [0.0, 0.0, 0.0]
