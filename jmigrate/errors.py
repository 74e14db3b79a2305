"""One root exception for the library; each subclass knows the exit code the CLI turns it into."""

from __future__ import annotations


class JMigrateError(Exception):
    """Base of every error jmigrate raises on purpose. The message is one line, safe to print."""

    exit_code = 2


class UsageError(JMigrateError):
    """Bad flags, bad config, unknown model or task."""


class InputError(JMigrateError):
    """A source file, index or plan that cannot be read or does not have the expected shape."""


class EncoderError(JMigrateError):
    """The encoder failed for good (after retries, or on an error that must not be retried)."""


class SpendCapReached(EncoderError):
    """The next request could take the spend past `--max-spend`, so it was not sent (resumable)."""


class CheckpointError(JMigrateError):
    """An output folder whose state does not allow resuming (changed source/settings, lock held)."""


class StaleFileError(JMigrateError):
    """A file changed between `plan` and `apply`."""
