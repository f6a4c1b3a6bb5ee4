"""Open model for user classes written closed: arrival tokens replace ``wait_time``.

Locust runs every task, on a user or in a ``TaskSet`` (``SequentialTaskSet`` and
``MarkovTaskSet`` included), through ``TaskSet.run``: ``execute_next_task()`` then
``wait()``, which sleeps ``wait_time()``. With the open model on, this module changes two
methods of ``TaskSet`` in the Locust process:

- ``execute_next_task``: before a *leaf* task (a function, not a nested TaskSet) the user
  takes the next arrival token from the process's scheduler and remembers its intended
  time; the first request the task sends carries it as ``intended_ts``. So one task
  execution is one arrival, wherever the task lives.
- ``wait``: no sleep (the tokens are the pacing); the stop checks stay, so a graceful
  stop still ends a user between tasks.

A user waiting for a token is in Locust's ``waiting`` state, so a stop kills it at once,
as it would during a think time. ``on_start`` runs once per user, outside the arrivals
(its requests get ``intended_ts = ts``). Users of self-paced classes (``ArrivalUser``) and
every user when no scheduler runs (``--closed-model``, no profile) keep Locust's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from locust.exception import StopUser
from locust.user.task import (
    LOCUST_STATE_RUNNING,
    LOCUST_STATE_STOPPING,
    LOCUST_STATE_WAITING,
    TaskSet,
)

INTENDED = "_peakready_intended"  # user attribute: intended start of the task's first request
_ORIGINAL: dict[str, Callable] = {}


def install(pacer_of: Callable[[], Any]) -> None:
    """Patch ``TaskSet`` in this process (idempotent). ``pacer_of()`` is the running
    scheduler (``Pacer``) or None, read per task so a run without one is untouched."""
    if _ORIGINAL:
        return
    _ORIGINAL["execute_next_task"] = TaskSet.execute_next_task
    _ORIGINAL["wait"] = TaskSet.wait
    original_next, original_wait = TaskSet.execute_next_task, TaskSet.wait

    def execute_next_task(self: TaskSet) -> None:
        user = self.user
        pacer = pacer_of()
        if pacer is not None and not getattr(user, "_peakready_self_paced", False):
            task = self._task_queue[0]
            if not (isinstance(task, type) and issubclass(task, TaskSet)):
                _take_token(user, pacer)
        original_next(self)

    def wait(self: TaskSet) -> None:
        user = self.user
        if pacer_of() is None or getattr(user, "_peakready_self_paced", False):
            return original_wait(self)
        if user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        return None

    TaskSet.execute_next_task = execute_next_task
    TaskSet.wait = wait


def uninstall() -> None:
    """Restore Locust's methods (tests and the benchmark's bare runs use it)."""
    for name, method in _ORIGINAL.items():
        setattr(TaskSet, name, method)
    _ORIGINAL.clear()


def _take_token(user: Any, pacer: Any) -> None:
    first = user.__dict__.get("_paced_spawn", False) and not user.__dict__.get(
        "_peakready_started", False)
    user._peakready_started = True
    user._state = LOCUST_STATE_WAITING  # a stop now kills the user before its task starts
    intended = pacer.take(first=first)
    if user._state == LOCUST_STATE_STOPPING:
        raise StopUser()
    user._state = LOCUST_STATE_RUNNING
    setattr(user, INTENDED, intended)
