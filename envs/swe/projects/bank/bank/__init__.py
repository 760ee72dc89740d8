"""bank: accounts, transfers and interest."""

from bank.account import Account, InsufficientFunds, compound_interest, transfer

__all__ = ["Account", "InsufficientFunds", "compound_interest", "transfer"]
