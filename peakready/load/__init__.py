"""Campaign load: Locust processes replaying a traffic profile as an arrival rate.

The engine side only: it never imports Locust (``peakready.load.openmodel`` is what
locustfiles import, inside the Locust processes).
"""

from peakready.load.process import LoadHandle, load_into_new_folder, read_live, run_load, start_load
from peakready.load.settings import DEFAULT_LOCUSTFILE, LoadSettings, check_host, resolve

__all__ = ["DEFAULT_LOCUSTFILE", "LoadHandle", "LoadSettings", "check_host",
           "load_into_new_folder", "read_live", "resolve", "run_load", "start_load"]
