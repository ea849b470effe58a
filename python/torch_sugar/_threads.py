"""A clean exit for processes that entered a torch-function mode of ours (a patch, a DeadUnitMonitor).

Work that PyTorch runs on its own C++ threads (gloo's collectives: ``dist.barrier()``, DDP's
all-reduces; CUDA backward passes) keeps a copy of the calling thread's state, the torch-function
mode stack included, and drops that copy on its thread once the work is done, a moment after the
program has seen it finish. Each mode on the stack is a Python object: if that copy holds its last
reference (the mode was left, or re-entered, since), dropping it takes the GIL; and a thread that
asks for the GIL while Python shuts down is ended by Python inside a C++ destructor, which makes
C++ abort the whole process ("terminate called without an active exception", exit signal 6),
after a run that otherwise succeeded. Seen about once in 30 ``torchrun`` runs of a two-process
DDP script under ``torch-sugar run`` on a loaded machine (a PyTorch problem: any Python mode does
it; plain programs are spared because their copies hold no Python object).

So the first time one of our modes is entered, an ``atexit`` handler is registered that, when the
program ends (after its own ``atexit`` handlers, before Python starts to shut down), gives the GIL
away until every other thread of the process is asleep: the pending drops then run while Python
can still serve them. It waits at most ``_TIMEOUT_S`` seconds (for a program whose own threads
never rest), and only where ``/proc`` lists threads (Linux); elsewhere it does nothing.
"""

import atexit
import os
import threading
import time
from typing import Optional

_TIMEOUT_S = 2.0
_POLL_S = 0.002
_QUIET_POLLS = 2  # consecutive polls in which no other thread was running
_registered = False


def settle_at_exit() -> None:
    """Registers :func:`settle` to run at exit, once per process (cheap to call every time)."""
    global _registered
    if not _registered:
        _registered = True
        atexit.register(settle)


def settle(timeout_s: float = _TIMEOUT_S) -> float:
    """Sleeps (the GIL released) until no other thread of this process has been running for
    ``_QUIET_POLLS`` polls in a row, or ``timeout_s`` has passed; returns the seconds waited."""
    start = time.monotonic()
    if _running_threads() is None:  # no /proc to read
        return 0.0
    quiet = 0
    while quiet < _QUIET_POLLS and time.monotonic() - start < timeout_s:
        time.sleep(_POLL_S)
        quiet = quiet + 1 if _running_threads() == 0 else 0
    return time.monotonic() - start


def _running_threads() -> Optional[int]:
    """How many threads of this process other than the calling one are running or runnable
    (state R in /proc/self/task/*/stat); None where /proc does not say."""
    me = threading.get_native_id()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    running = 0
    for tid in tids:
        if tid == str(me):
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread has ended
            continue
        # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")".
        if stat[stat.rindex(b")") + 2 :][:1] == b"R":
            running += 1
    return running
