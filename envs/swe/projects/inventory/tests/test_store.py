from inventory import Inventory, Item


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def _shop():
    inv = Inventory(low_stock=3)
    inv.add("apple", 0.5, 10)
    inv.add("pear", 0.75, 2)
    inv.add("melon", 3.0, 3)
    return inv


def test_item_value():
    assert Item("x", 2.5, 4).value() == 10.0


def test_item_negative_price():
    assert _raises(ValueError, Item, "x", -1)


def test_add_new_and_existing():
    inv = Inventory()
    assert inv.add("apple", 0.5, 3) == 3
    assert inv.add("apple", 0.9, 2) == 5
    assert inv.items["apple"].price == 0.5


def test_add_bad_quantity():
    assert _raises(ValueError, Inventory().add, "x", 1.0, 0)


def test_remove():
    inv = _shop()
    assert inv.remove("apple", 4) == 6


def test_remove_all_deletes():
    inv = _shop()
    inv.remove("pear", 2)
    assert "pear" not in inv.items


def test_remove_too_many():
    inv = _shop()
    assert _raises(ValueError, inv.remove, "pear", 3)
    assert inv.items["pear"].quantity == 2


def test_remove_unknown():
    assert _raises(KeyError, _shop().remove, "kiwi")


def test_total_value():
    assert _shop().total_value() == 5.0 + 1.5 + 9.0


def test_low_stock():
    assert _shop().low_stock_items() == ["melon", "pear"]


def test_most_valuable():
    assert _shop().most_valuable(2) == ["melon", "apple"]


def test_most_valuable_tie():
    inv = Inventory()
    inv.add("b", 1.0, 2)
    inv.add("a", 2.0, 1)
    assert inv.most_valuable() == ["a"]


def test_discount():
    inv = _shop()
    inv.apply_discount(20)
    assert inv.items["melon"].price == 2.4
    assert inv.items["pear"].price == 0.6


def test_discount_bounds():
    inv = _shop()
    assert _raises(ValueError, inv.apply_discount, 101)
    inv.apply_discount(100)
    assert inv.total_value() == 0
