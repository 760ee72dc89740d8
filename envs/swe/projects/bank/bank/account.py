"""Bank accounts that keep balances in integer cents."""


class InsufficientFunds(Exception):
    """A withdrawal is larger than the balance plus the overdraft."""


class Account:
    """An account with an optional overdraft limit (cents)."""

    def __init__(self, owner, balance=0, overdraft=0):
        if balance < 0:
            raise ValueError("opening balance must not be negative")
        self.owner = owner
        self.balance = balance
        self.overdraft = overdraft
        self.history = []

    def deposit(self, amount):
        """Add ``amount`` cents; returns the new balance."""
        if amount <= 0:
            raise ValueError("deposit must be positive")
        self.balance += amount
        self.history.append(("deposit", amount))
        return self.balance

    def withdraw(self, amount):
        """Take ``amount`` cents out, down to ``-overdraft``."""
        if amount <= 0:
            raise ValueError("withdrawal must be positive")
        if self.balance - amount < -self.overdraft:
            raise InsufficientFunds(self.owner)
        self.balance -= amount
        self.history.append(("withdraw", amount))
        return self.balance

    def available(self):
        """What can still be withdrawn."""
        return self.balance + self.overdraft

    def statement(self):
        """One line per transaction: ``deposit 100`` / ``withdraw 50``."""
        return [kind + " " + str(amount) for kind, amount in self.history]


def transfer(source, target, amount):
    """Move ``amount`` from ``source`` to ``target``; nothing changes on failure."""
    source.withdraw(amount)
    target.deposit(amount)
    return source.balance, target.balance


def compound_interest(principal, rate_percent, years, periods_per_year=1):
    """Balance after ``years`` of compound interest, rounded to whole cents."""
    if years < 0 or periods_per_year < 1:
        raise ValueError("years must be >= 0 and periods_per_year >= 1")
    rate = rate_percent / 100 / periods_per_year
    balance = principal
    for _ in range(years * periods_per_year):
        balance = balance * (1 + rate)
    return round(balance)
