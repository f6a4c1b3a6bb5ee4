"""One module per sub-command. Each defines ``register(subparsers)`` which adds its
parser and sets ``func`` (a callable taking the parsed args and returning an exit code).
The CLI discovers the modules, so adding a command touches no shared file."""
