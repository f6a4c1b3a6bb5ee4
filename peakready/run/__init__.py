"""``peakready run`` orchestration: schedule, stop conditions, live view, the run loop
(``engine.execute``).

Nothing is imported here: the watcher a run spawns (``reaper``, one per run) needs only
psutil, and importing the engine would cost it a second and a half of pandas and boto3.
"""
