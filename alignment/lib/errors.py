class DomainError(Exception):
    """A business rule was broken; the message is written for a person and nothing was changed."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(DomainError):
    """The person's role does not allow this action."""
