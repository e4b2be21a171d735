"""User-facing errors: each says what went wrong, where in the user's source, and what to do."""
import linecache
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


class GradientMismatchError(TorchZygoteError):
    """torchzygote's gradient disagrees with central differences (``gradcheck``, and every
    gradient while ``TORCHZYGOTE_CHECK=1`` / ``set_check(True)``); the message has both numbers."""


# generated file name -> (user's file, {generated line: user's line})
GENERATED: dict = {}


def add_user_frames(exc: BaseException) -> None:
    """Add a note to an exception raised inside generated code, naming the
    user's own file and line for each generated frame on its traceback (the
    interpreter's printer cannot show generated source)."""
    if getattr(exc, "_tz_noted", False) or not hasattr(exc, "add_note"):
        return
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        entry = GENERATED.get(tb.tb_frame.f_code.co_filename)
        if entry is not None:
            file, lines = entry
            line = lines.get(tb.tb_lineno)
            if line is not None:
                src = linecache.getline(file, line).strip()
                frames.append(f'  File "{file}", line {line}\n    {src}')
        tb = tb.tb_next
    if frames:
        exc.add_note("torchzygote: raised while differentiating, in your code at\n" + "\n".join(frames))
        exc._tz_noted = True
