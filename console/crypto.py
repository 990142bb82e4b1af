"""Encryption at rest for the secrets of managed servers (MultiFernet, newest key first)."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.CONSOLE_SECRET_KEYS])


def encrypt(value: str) -> bytes:
    return _fernet().encrypt(value.encode())


def decrypt(token: bytes) -> str:
    try:
        return _fernet().decrypt(token).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted: is its key missing from CONSOLE_SECRET_KEYS?"
        ) from None


def rotate(token: bytes) -> bytes:
    """The same secret encrypted with the newest key."""
    try:
        return _fernet().rotate(token)
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with any key") from None


def reset_cache() -> None:
    """Forget the keys read from settings (after the settings changed, in tests)."""
    _fernet.cache_clear()
