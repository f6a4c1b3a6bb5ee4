"""The sandbox storefront: one process per instance (``python -m peakready.sandbox.storefront``)."""
