"""The embedded beat (`worker -B`) dies with its worker.

Killed with SIGKILL, a worker cannot stop its beat; the orphan goes on publishing, and a restarted
worker adds a second beat that samples every sensor again. On Linux the kernel can signal a child
when its parent dies (prctl PR_SET_PDEATHSIG); the beat asks for that as it starts.
"""
import ctypes
import ctypes.util
import logging
import os
import signal
import sys

from celery.signals import beat_init

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
# The process that imported the app: the worker itself, or a standalone `celery beat`.
_STARTER_PID = os.getpid()


def die_with_parent(signum=signal.SIGTERM):
    """Ask the kernel to send signum when our parent exits; False where that is unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def _on_beat_init(sender=None, **_):
    if os.getpid() == _STARTER_PID:
        return  # a standalone `celery beat` is nobody's child
    if not die_with_parent():
        log.warning("cannot bind the beat to its worker on %s; stop both together", sys.platform)
    elif os.getppid() != _STARTER_PID:  # the worker died before we asked
        log.warning("embedded beat: the worker is gone, stopping")
        os.kill(os.getpid(), signal.SIGTERM)


def bind_to_worker():
    beat_init.connect(_on_beat_init, weak=False)
