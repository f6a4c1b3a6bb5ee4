"""peakready's Locust plugin, loaded by peakready next to any locustfile:

    locust -f peakready/load/locustplugin/peakready_plugin.py,your_locustfile.py ...

Importing ``peakready.load.openmodel`` registers the ``--traffic-*`` options (through
``events.init_command_line_parser``), sample and order capture, live status and the
per-process arrival scheduler; the shape below makes the profile's duration the run's.
This file holds no state of its own (Locust imports it as a top-level module, a locustfile
imports ``peakready.load.openmodel`` by its package name: both see the same module).
"""

from peakready.load.openmodel import ArrivalRateShape  # noqa: F401  (picked up by Locust)
