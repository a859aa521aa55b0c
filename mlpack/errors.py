"""The one exception hierarchy of mlpack (spec/verification.md, "Error codes").

Every failure a user can cause is an :class:`MlpackError` with a stable ``code``
(``E_DIGEST``, ``E_USAGE``...), a one-line message, an optional ``hint`` saying what
to do, and the pack ``member`` concerned when there is one. The CLI maps the class
to an exit code; nothing else in the package prints or exits.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_USAGE",
    "IOFailure",
    "Interrupted",
    "MlpackError",
    "UsageError",
    "VerificationError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_INTERRUPTED = 130


class MlpackError(Exception):
    """Base of every error mlpack raises on purpose."""

    exit_code = EXIT_FAILED
    default_code = "E_FAILED"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        member: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint
        self.member = member

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only fields survive pickling (errors cross process-pool boundaries)
        return (_rebuild, (type(self), self.message, self.code, self.hint, self.member))

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "member": self.member}


def _rebuild(cls: type[MlpackError], message: str, code: str, hint: str | None,
             member: str | None) -> MlpackError:
    return cls(message, code=code, hint=hint, member=member)


class VerificationError(MlpackError):
    """The pack (or an input to pack) breaks a rule of the spec. Exit 1."""

    default_code = "E_MANIFEST"


class UsageError(MlpackError):
    """Bad flags, a missing input, a bad key file, an existing output. Exit 2."""

    exit_code = EXIT_USAGE
    default_code = "E_USAGE"


class IOFailure(MlpackError):
    """The operation could not complete: I/O error, disk full, permission. Exit 3."""

    exit_code = EXIT_IO
    default_code = "E_IO"

    @classmethod
    def from_os_error(cls, err: OSError, what: str) -> IOFailure:
        import errno

        code = "E_NOSPACE" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "E_IO"
        reason = err.strerror or str(err)
        hint = "free some disk space and retry" if code == "E_NOSPACE" else None
        return cls(f"{what}: {reason}", code=code, hint=hint)


class Interrupted(MlpackError):
    """Ctrl-C: the operation stopped and removed its partial output. Exit 130."""

    exit_code = EXIT_INTERRUPTED
    default_code = "E_INTERRUPTED"
