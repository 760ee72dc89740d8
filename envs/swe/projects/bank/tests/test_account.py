from bank import Account, InsufficientFunds, compound_interest, transfer


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_open_negative():
    assert _raises(ValueError, Account, "ann", -5)


def test_deposit():
    acct = Account("ann", 100)
    assert acct.deposit(50) == 150


def test_deposit_not_positive():
    assert _raises(ValueError, Account("ann").deposit, 0)


def test_withdraw():
    acct = Account("ann", 100)
    assert acct.withdraw(30) == 70


def test_withdraw_exact_balance():
    acct = Account("ann", 100)
    assert acct.withdraw(100) == 0


def test_withdraw_overdraft():
    acct = Account("ann", 100, overdraft=50)
    assert acct.withdraw(150) == -50
    assert _raises(InsufficientFunds, acct.withdraw, 1)


def test_withdraw_insufficient():
    acct = Account("ann", 10)
    assert _raises(InsufficientFunds, acct.withdraw, 11)
    assert acct.balance == 10


def test_available():
    assert Account("ann", 100, overdraft=25).available() == 125


def test_statement():
    acct = Account("ann", 0)
    acct.deposit(100)
    acct.withdraw(40)
    assert acct.statement() == ["deposit 100", "withdraw 40"]


def test_transfer():
    a, b = Account("a", 100), Account("b", 5)
    assert transfer(a, b, 60) == (40, 65)


def test_transfer_fails_cleanly():
    a, b = Account("a", 10), Account("b", 5)
    assert _raises(InsufficientFunds, transfer, a, b, 60)
    assert (a.balance, b.balance) == (10, 5)


def test_compound_interest_yearly():
    assert compound_interest(10000, 10, 2) == 12100


def test_compound_interest_monthly():
    assert compound_interest(10000, 12, 1, periods_per_year=12) == 11268


def test_compound_interest_zero_years():
    assert compound_interest(5000, 5, 0) == 5000


def test_compound_interest_bad():
    assert _raises(ValueError, compound_interest, 100, 5, -1)
    assert _raises(ValueError, compound_interest, 100, 5, 1, 0)
