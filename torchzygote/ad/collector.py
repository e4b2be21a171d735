"""Python's automatic cyclic garbage collection, held off while long gradient calls and transforms
run (in any thread): the values a pullback keeps, and the objects a transform makes, are many small
acyclic objects, and a full collection traverses the whole heap (about 0.1 s with torch imported).
Only the first threshold is touched (0 stops automatic collections), so ``gc.disable()``,
``gc.enable()`` and ``gc.collect()`` in user code or other threads keep their effect."""
from __future__ import annotations

import gc
import threading

paused = [0, 0]     # [holds running, threshold to put back]
_lock = threading.Lock()
_get_threshold, _set_threshold = gc.get_threshold, gc.set_threshold


def hold() -> None:
    with _lock:
        if not paused[0]:
            t0, t1, t2 = _get_threshold()
            paused[1] = t0
            if t0:
                _set_threshold(0, t1, t2)
        paused[0] += 1


def release() -> None:
    with _lock:
        paused[0] -= 1
        if not paused[0] and paused[1]:
            t0, t1, t2 = _get_threshold()
            if not t0:
                _set_threshold(paused[1], t1, t2)
