"""Checks for what callers key in: Brazilian CPF and CNPJ check digits, Luhn (card numbers)."""

from __future__ import annotations


def cpf_ok(digits: str) -> bool:
    """A CPF (11 digits) whose two check digits are right; all-equal numbers are refused."""
    if len(digits) != 11 or not digits.isdigit() or digits == digits[0] * 11:
        return False
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1)))
        check = (total * 10) % 11 % 10
        if check != int(digits[size]):
            return False
    return True


def cnpj_ok(digits: str) -> bool:
    """A CNPJ (14 digits) whose two check digits are right; all-equal numbers are refused."""
    if len(digits) != 14 or not digits.isdigit() or digits == digits[0] * 14:
        return False
    weights = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for size in (12, 13):
        w = weights if size == 12 else [6] + weights
        total = sum(int(d) * k for d, k in zip(digits[:size], w))
        check = 0 if total % 11 < 2 else 11 - total % 11
        if check != int(digits[size]):
            return False
    return True


def luhn_ok(digits: str) -> bool:
    """A number (card, account) that passes the Luhn check."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


CHECKS = {"cpf": cpf_ok, "cnpj": cnpj_ok, "luhn": luhn_ok}


def mask(digits: str, keep: int = 2) -> str:
    """What logs and storage keep of a sensitive input: its length and last digits."""
    return "*" * max(0, len(digits) - keep) + digits[-keep:] if digits else ""
