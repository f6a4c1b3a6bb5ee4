"""The sandbox's ALB: its own process (``python -m peakready.sandbox.balancer``)."""
