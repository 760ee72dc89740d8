from graphs import components, has_cycle, shortest_path, topological_sort, undirected

DAG = {"shirt": ["tie", "belt"], "tie": ["jacket"], "pants": ["shoes", "belt"],
       "belt": ["jacket"], "socks": ["shoes"], "shoes": [], "jacket": []}


def test_undirected():
    assert undirected([(1, 2), (2, 3)]) == {1: [2], 2: [1, 3], 3: [2]}


def test_shortest_path():
    g = undirected([(1, 2), (2, 3), (3, 4), (1, 5), (5, 4)])
    assert shortest_path(g, 1, 4) == [1, 5, 4]


def test_shortest_path_same_node():
    assert shortest_path({1: []}, 1, 1) == [1]


def test_shortest_path_unreachable():
    g = undirected([(1, 2), (3, 4)])
    assert shortest_path(g, 1, 4) is None


def test_shortest_path_long_chain():
    g = undirected([(i, i + 1) for i in range(6)])
    assert shortest_path(g, 0, 6) == [0, 1, 2, 3, 4, 5, 6]


def test_components():
    g = undirected([(1, 2), (3, 4), (4, 5)])
    g[6] = []
    assert components(g) == [[1, 2], [3, 4, 5], [6]]


def test_components_single():
    assert components(undirected([(2, 1), (1, 3)])) == [[1, 2, 3]]


def test_topological_sort():
    assert topological_sort(DAG) == ["pants", "shirt", "belt", "socks", "shoes", "tie",
                                      "jacket"]


def test_topological_sort_chain():
    assert topological_sort({3: [2], 2: [1], 1: []}) == [3, 2, 1]


def test_topological_sort_cycle():
    try:
        topological_sort({"a": ["b"], "b": ["a"]})
    except ValueError:
        return
    raise AssertionError("a cycle did not raise ValueError")


def test_has_cycle():
    assert has_cycle({"a": ["b"], "b": ["c"], "c": ["a"]})
    assert not has_cycle(DAG)
