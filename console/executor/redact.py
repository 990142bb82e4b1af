"""Masking of secrets in text bound for audit entries, job logs and pages.

Placeholder: the executor's issue work replaces this with the full implementation.
"""

MASK = "********"


def redact(text: str, secrets=()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
