"""Exceptions shared across the console."""


class ExpectedFailure(Exception):
    """A failure with a clear message for the operator, not a bug.

    The job wrapper marks a job `failed` (not `errored`) and shows the message as it is, so the
    message must be written for a person and carry no secret.
    """
