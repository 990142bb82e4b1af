"""A real SMTP server for mail tests: aiosmtpd (which Django's own mail tests use) on loopback,
keeping what it received. The fixture `smtp_server` (tests/conftest.py) starts one per test."""

import socket


class Inbox:
    """aiosmtpd handler keeping what the server received."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    """A loopback port nothing listens on (closed again: nothing listens there until reused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
