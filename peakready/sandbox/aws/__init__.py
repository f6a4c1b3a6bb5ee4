"""The sandbox's AWS control plane (issue 4): an AWS-compatible endpoint on loopback,
built on moto, whose API calls act on the sandbox's real processes.

Entry point: ``peakready.sandbox.aws.plane.ControlPlane`` (an addon of the sandbox
daemon). See docs/control-plane.md.
"""

from peakready.sandbox.aws.regions import share_lookups

share_lookups()  # before any module of this package imports moto (see regions.py)
