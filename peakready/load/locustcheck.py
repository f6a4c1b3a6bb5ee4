"""Does a locustfile run under peakready? Checked with Locust's own loader and parser.

Run by the engine as a subprocess before any run folder or request exists
(``python -m peakready.load.locustcheck PLUGIN LOCUSTFILE -- LOCUST_ARGS``, see
``peakready.load.preflight``): it imports the plugin and the file the way ``locust -f
plugin,file`` does, builds Locust's command-line parser with every plugin's options and
parses exactly the arguments the load processes will get. On success it prints one JSON
line (user classes, which are paced by arrival tokens); on failure one line naming the
cause, with Locust's or Python's own error text, and exits 2.

``plugin_problems`` is also called inside the Locust processes (``openmodel``), so
``locust -f peakready_plugin.py,file.py`` run by hand fails the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any

EXIT_BAD = 2


def plugin_problems(user_classes: list[type], shape_classes: list[Any],
                    closed_model: bool) -> list[str]:
    """What peakready cannot run as asked (empty: fine). Locust-side: classes are real."""
    from locust import User

    from peakready.load.openmodel import ArrivalRateShape

    problems = []
    others = sorted(type(s).__name__ for s in shape_classes if not isinstance(s, ArrivalRateShape))
    if others:
        problems.append(f"defines its own LoadTestShape {others[0]}: under peakready the "
                        "traffic profile shapes the load (remove the shape class, or run the "
                        "file with plain locust)")
    if not closed_model:
        for cls in user_classes:
            if cls.run is not User.run and not getattr(cls, "_peakready_self_paced", False):
                problems.append(f"user class {cls.__name__} overrides run(), so its tasks "
                                "cannot be paced by arrival tokens: use --closed-model "
                                "(plan: load.closed_model: true)")
                break
    return problems


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _import_error(exc: BaseException, locustfile: str) -> str:
    """``SyntaxError: invalid syntax (line 3)``: Python's own words and where in the file."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"
    line = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == Path(locustfile).resolve():
            line = f" (line {frame.lineno})"
            break
    return f"{type(exc).__name__}: {exc}{line}"


def check(plugin: str, locustfile: str, locust_args: list[str]) -> dict[str, Any]:
    """Raises ``ValueError(one line)`` for a locustfile peakready cannot run."""
    from locust.main import merge_locustfiles_content

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            users, shapes, _tasks, _shape = merge_locustfiles_content([plugin, locustfile])
    except SystemExit:  # Locust's own message (duplicate classes, no module spec) on stderr
        raise ValueError(f"does not load: {_last_line(err.getvalue()) or 'Locust exited'}") \
            from None
    except BaseException as exc:  # noqa: BLE001 - whatever the file raises while importing
        raise ValueError(f"does not import: {_import_error(exc, locustfile)}") from None

    from locust import log as locust_log
    from locust.argument_parser import get_parser

    err = io.StringIO()
    locust_log.unhandled_greenlet_exception = False
    try:
        with contextlib.redirect_stderr(err):
            parser = get_parser(default_config_files=[])
            # Locust logs (and survives) an exception in an init_command_line_parser
            # listener, e.g. argparse's "conflicting option string": the file's options
            # would then silently be missing
            if locust_log.unhandled_greenlet_exception:
                raise ValueError(f"options clash: {_last_line(err.getvalue())}")
            options = parser.parse_args(locust_args)
    except SystemExit:  # argparse: "locust: error: unrecognized arguments: --x"
        raise ValueError(f"option error: {_last_line(err.getvalue())}") from None

    if not users:
        raise ValueError("defines no user class (Locust: \"No User class found!\"; a class "
                         "derived from User/HttpUser/FastHttpUser, not abstract)")
    if options.user_classes:
        missing = sorted(set(options.user_classes) - set(users))
        if missing:
            raise ValueError(f"Unknown User(s): {', '.join(missing)} "
                             f"(defined: {', '.join(sorted(users))})")
        users = {name: users[name] for name in options.user_classes}
    problems = plugin_problems(list(users.values()), list(shapes.values()),
                               bool(options.closed_model))
    if problems:
        raise ValueError(problems[0])
    return {"user_classes": sorted(users),
            "self_paced": sorted(n for n, c in users.items()
                                 if getattr(c, "_peakready_self_paced", False))}


def main(argv: list[str]) -> int:
    sys.argv[0] = "locust"  # argparse names the program in its errors: Locust's words
    plugin, locustfile, *rest = argv
    locust_args = rest[1:] if rest[:1] == ["--"] else rest
    out = sys.stdout
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a file that prints while importing
            result = check(plugin, locustfile, locust_args)
    except ValueError as exc:
        out.write(" ".join(str(exc).split()) + "\n")
        return EXIT_BAD
    out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
