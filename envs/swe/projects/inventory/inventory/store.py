"""An in-memory inventory of items with prices and quantities."""


class Item:
    """One stock line."""

    def __init__(self, name, price, quantity=0):
        if price < 0:
            raise ValueError("price must not be negative")
        self.name = name
        self.price = price
        self.quantity = quantity

    def value(self):
        """Price times quantity."""
        return self.price * self.quantity


class Inventory:
    """Items by name, with a low-stock threshold."""

    def __init__(self, low_stock=5):
        self.items = {}
        self.low_stock = low_stock

    def add(self, name, price, quantity=1):
        """Add ``quantity`` units; a known item keeps its price."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if name in self.items:
            self.items[name].quantity += quantity
        else:
            self.items[name] = Item(name, price, quantity)
        return self.items[name].quantity

    def remove(self, name, quantity=1):
        """Take ``quantity`` units out; KeyError if unknown, ValueError if too few."""
        if name not in self.items:
            raise KeyError(name)
        item = self.items[name]
        if quantity > item.quantity:
            raise ValueError("not enough stock")
        item.quantity -= quantity
        if item.quantity == 0:
            del self.items[name]
        return item.quantity

    def total_value(self):
        """Sum of every item's value."""
        total = 0
        for item in self.items.values():
            total += item.value()
        return total

    def low_stock_items(self):
        """Names whose quantity is at or below the threshold, sorted."""
        return sorted(n for n, it in self.items.items() if it.quantity <= self.low_stock)

    def most_valuable(self, count=1):
        """The ``count`` names with the highest value, best first (ties by name)."""
        ranked = sorted(self.items.values(), key=lambda it: (-it.value(), it.name))
        return [it.name for it in ranked[:count]]

    def apply_discount(self, percent):
        """Lower every price by ``percent`` (0-100), rounded to cents."""
        if not 0 <= percent <= 100:
            raise ValueError("percent must be in [0, 100]")
        for item in self.items.values():
            item.price = round(item.price * (100 - percent) / 100, 2)
