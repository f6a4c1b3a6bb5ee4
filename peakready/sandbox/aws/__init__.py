"""The sandbox's AWS control plane (issue 4): an AWS-compatible endpoint on loopback,
built on moto, whose API calls act on the sandbox's real processes.

Entry point: ``peakready.sandbox.aws.plane.ControlPlane`` (an addon of the sandbox
daemon). See docs/control-plane.md.
"""
