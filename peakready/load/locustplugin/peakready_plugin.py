"""peakready's Locust plugin, loaded by peakready next to any locustfile:

    locust -f peakready/load/locustplugin/peakready_plugin.py,your_locustfile.py ...

Importing ``peakready.load.openmodel`` registers the ``--traffic-*`` options (through
``events.init_command_line_parser``), sample and order capture, live status and the
per-process arrival scheduler; the shape below makes the profile's duration the run's.
This file holds no state of its own (Locust imports it as a top-level module, a locustfile
imports ``peakready.load.openmodel`` by its package name: both see the same module).
"""

import sys

from peakready.load.openmodel import ArrivalRateShape  # noqa: F401  (picked up by Locust)

if "--worker" in sys.argv:
    # A worker's heavy imports (pandas for the profile, pyarrow for the shards) happen here,
    # before it connects: after that, a loop blocked for seconds sends no heartbeats and
    # the master calls the worker missing (Locust: after about 4 s).
    import pyarrow  # noqa: F401

    import peakready.profiles  # noqa: F401
