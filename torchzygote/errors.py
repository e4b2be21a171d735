"""User-facing errors: each says what went wrong, where in the user's source, and what to do."""
from typing import Optional, Tuple


class TorchZygoteError(Exception):
    """Base class of every error torchzygote raises on purpose."""

    def __init__(self, msg: str, loc: Optional[Tuple[str, int]] = None):
        self.loc = loc
        if loc is not None:
            msg = f"{msg}\n  at {loc[0]}:{loc[1]}"
        super().__init__(msg)


class LiftError(TorchZygoteError):
    """A construct the frontend cannot turn into IR."""


class NoRuleError(TorchZygoteError):
    """A gradient is needed through code with no source and no rule."""


class GradientError(TorchZygoteError):
    """Misuse of the gradient API (e.g. a non-scalar output for ``gradient``)."""
