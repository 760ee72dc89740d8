"""inventory: stock keeping for a small shop."""

from inventory.store import Inventory, Item

__all__ = ["Inventory", "Item"]
