"""Stack events: a failing listener is logged (as Locust's EventHook does), never fatal."""

from __future__ import annotations

import logging

from peakready.sandbox.stack import Stack


def test_a_failing_listener_is_logged_and_the_others_still_hear_the_event(tmp_path, caplog):
    stack = Stack(tmp_path / "state")  # not started: events need no processes
    heard: list[dict] = []

    def broken(event: dict) -> None:
        raise RuntimeError("listener bug")

    stack.subscribe(broken)
    stack.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="peakready.sandbox.stack"):
        stack._event("autoscaling", "instance_launch", "i-1", {"port": 1})
    assert [e["kind"] for e in heard] == ["instance_launch"]
    assert [e["kind"] for e in stack.events] == ["instance_launch"]
    failed = [r for r in caplog.records if "listener" in r.getMessage()]
    assert failed and "instance_launch" in failed[0].getMessage()
    assert failed[0].exc_info and "listener bug" in str(failed[0].exc_info[1])
