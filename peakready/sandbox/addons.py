"""Plug-in point of the sandbox daemon: the AWS control plane lives here.

``addons(stack, timing, state_dir, instances)`` returns objects with ``start()``,
``status() -> dict`` (merged into the status JSON), ``stop()`` and
``manages_web_tier: bool``; optionally ``ready() -> bool`` (the daemon reports ready once
every addon says so). The daemon calls it once the data plane is up, starts the addons,
stops them first on shutdown. When an addon manages the web tier, the daemon launches no
default instances.
"""

from __future__ import annotations


def addons(stack, timing, state_dir, instances: int = 2) -> list:
    """``instances`` (the daemon's ``--instances``) becomes the Auto Scaling group's
    desired capacity."""
    from peakready.sandbox.aws.plane import ControlPlane  # moto loads only in the daemon

    return [ControlPlane(stack, timing, state_dir, desired=instances if instances > 0 else 2)]
