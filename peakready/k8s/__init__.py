"""Kubernetes: manifests that run a plan's load on a cluster with the Locust operator."""
