"""The moto extensions table: every patch is named, says why, takes effect on install, and
can be built and exercised on its own."""

from __future__ import annotations

import threading
from types import SimpleNamespace as NS

import pytest

from peakready.sandbox import timing
from peakready.sandbox.aws import extensions
from peakready.sandbox.aws.plane import ControlPlane

BY_NAME = {p.name: p for p in extensions.PATCHES}


@pytest.fixture()
def plane():
    plane = ControlPlane(stack=None, timing=timing.Timing())  # no server, no processes
    extensions.attach(plane)
    try:
        yield plane
    finally:
        extensions.detach(plane)


def test_the_table_names_each_target_once():
    assert len(BY_NAME) == len(extensions.PATCHES)
    targets = [p.target for p in extensions.PATCHES]
    assert len(set(targets)) == len(targets)


@pytest.mark.parametrize("patch", extensions.PATCHES, ids=lambda p: p.name)
def test_each_patch_says_why_and_replaces_its_target_on_install(patch):
    extensions.install()
    assert len(patch.why) > 20, patch.name
    assert patch.target in extensions.ORIGINALS
    assert patch.owner.__dict__[patch.attribute] is not extensions.ORIGINALS[patch.target]


@pytest.mark.parametrize("patch", [p for p in extensions.PATCHES if p.routed],
                         ids=lambda p: p.name)
def test_each_routed_patch_is_moto_as_shipped_without_a_plane(patch):
    """Other in-process users of moto see moto's own answer when no plane is attached."""
    assert extensions._plane() is None
    calls = []

    def moto_original(self):
        calls.append(self)
        return "moto's answer"

    response = NS()
    assert patch.make(moto_original)(response) == "moto's answer"
    assert calls == [response]


def test_a_routed_action_moto_lacks_says_not_implemented_without_a_plane():
    with pytest.raises(NotImplementedError, match="test_failover"):
        BY_NAME["test_failover"].make(None)(NS())


def test_every_action_holds_the_lock():
    seen = []

    def call_action(self):
        probe = threading.Thread(target=lambda: seen.append(extensions.LOCK.acquire(False)))
        probe.start()
        probe.join()
        return "done"

    assert BY_NAME["locked_call_action"].make(call_action)(NS()) == "done"
    assert seen == [False]  # another thread could not take the lock during the action


def test_pending_instances_count_toward_capacity():
    group = NS(instance_states=[NS(lifecycle_state=s) for s in
                                ("InService", "Pending", "Terminating", "Standby")])
    active = BY_NAME["active_instances"].make(None)(group)
    assert [s.lifecycle_state for s in active] == ["InService", "Pending"]


def test_new_instances_are_born_pending_only_under_a_plane(plane):
    init = BY_NAME["pending_until_healthy"].make(
        lambda self, instance, state, *a, **k: setattr(self, "state", state))
    born = NS()
    init(born, "i-1")
    assert born.state == "Pending"
    extensions.detach(plane)
    init(born, "i-1")
    assert born.state == "InService"


def test_suspended_processes_carry_a_reason_under_a_plane(plane):
    prop = BY_NAME["suspension_reasons"].make(None)
    group = type("Group", (), {"suspended_processes": prop})()
    group.suspended_processes = ["Launch", "Terminate"]
    reasons = {p["ProcessName"]: p["SuspensionReason"] for p in group.suspended_processes}
    assert set(reasons) == {"Launch", "Terminate"}
    assert all(r.startswith("User suspended at ") for r in reasons.values())
    group.suspended_processes = ["Terminate"]  # Launch resumed: its reason goes
    assert [p["ProcessName"] for p in group.suspended_processes] == ["Terminate"]


def test_launch_spreads_over_subnets_under_a_plane(plane):
    launched = []

    def replace(group, count, tags):
        subnet = group.vpc_zone_identifier.split(",")[0]
        for _ in range(count):
            state = NS(lifecycle_state="Pending", instance=NS(subnet_id=subnet))
            group.instance_states.append(state)
            launched.append(subnet)

    group = NS(vpc_zone_identifier="subnet-a,subnet-b", instance_states=[],
               suspended_processes=[])
    group.active_instances = lambda: group.instance_states
    BY_NAME["balanced_launch"].make(replace)(group, 4, {})
    assert launched == ["subnet-a", "subnet-b", "subnet-a", "subnet-b"]
    assert group.vpc_zone_identifier == "subnet-a,subnet-b"  # restored
    group.suspended_processes = [{"ProcessName": "Launch", "SuspensionReason": ""}]
    BY_NAME["balanced_launch"].make(replace)(group, 1, {})
    assert len(launched) == 4  # Launch suspended: nothing launched


def test_scale_in_takes_the_busiest_az_oldest_first_under_a_plane(plane):
    removed = []

    def set_desired(group, capacity):
        while len(group.instance_states) > capacity:
            removed.append(group.instance_states.pop(0).name)

    def state(name, az, launched):
        return NS(name=name, availability_zone=az, lifecycle_state="InService",
                  protected_from_scale_in=False, instance=NS(launch_time=launched))

    group = NS(instance_states=[state("a-new", "a", 3), state("b-old", "b", 1),
                                state("a-old", "a", 2)], suspended_processes=[])
    BY_NAME["balanced_scale_in"].make(set_desired)(group, 1)
    assert removed == ["a-old", "b-old"]


def test_db_failover_is_moto_s_writer_swap_without_a_plane_or_once_promoted(plane):
    swapped = []
    failover = BY_NAME["failover_promotes_standby"].make(
        lambda cluster, target: swapped.append(target))
    failover(NS(_peakready_apply=True), "db-2")  # the data tier promoted: moto's swap
    extensions.detach(plane)
    failover(NS(), "db-1")
    assert swapped == ["db-2", "db-1"]
    extensions.install()
    from moto.rds.models import DBCluster

    assert DBCluster.apply_failover is extensions.ORIGINALS[
        BY_NAME["failover_promotes_standby"].target]
