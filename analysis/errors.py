"""Errors whose message is shown to users as it is: one line, no traceback."""


class MediaError(Exception):
    """The input cannot be analysed (not media, corrupt, too large, unreadable...)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
