"""Holds only ``peakready_plugin.py``: the file peakready passes to Locust next to the
user's locustfile (``-f .../peakready_plugin.py,user.py``).

Kept in a folder of its own because Locust puts a locustfile's folder at the front of
``sys.path`` while importing it; nothing here can shadow the user's own modules.
"""
