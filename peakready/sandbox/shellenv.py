"""The environment a shell needs to point stock tools (``chaos run``, boto3, the aws CLI,
Locust) at a running sandbox: what ``peakready sandbox env`` prints.

Both region variables are set because tools disagree on which one they read (chaosaws:
``aws_region`` in the experiment, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``; the
aws CLI and boto3: ``AWS_DEFAULT_REGION``/``AWS_REGION``). A profile or session token left in
the shell would mix real credentials into sandbox calls, so both are unset. A file that
hard-codes another region still reaches the sandbox: its endpoint serves every region as its
own (peakready/sandbox/aws/extensions.py, ``one_region``).
"""

from __future__ import annotations

import shlex

UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def variables(status: dict) -> dict[str, str]:
    """Variable -> value for a running sandbox's status (``sandbox.status()``)."""
    out = {"PEAKREADY_STOREFRONT_URL": status["storefront_url"],
           "PEAKREADY_SANDBOX_DIR": str(status["state_dir"])}
    aws = status.get("aws")
    if aws:
        out.update({
            "AWS_ENDPOINT_URL": aws["endpoint_url"],
            "AWS_ACCESS_KEY_ID": aws["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"],
            "AWS_REGION": aws["region"],
            "AWS_DEFAULT_REGION": aws["region"],
            "AWS_MAX_ATTEMPTS": "1",  # a refused or failing call fails fast, not retried
        })
    return out


def render(status: dict) -> str:
    """``export`` lines for sh/bash/zsh: ``eval "$(peakready sandbox env)"``."""
    lines = [f"unset {' '.join(UNSET)}"] if status.get("aws") else []
    lines += [f"export {k}={shlex.quote(v)}" for k, v in variables(status).items()]
    return "\n".join(lines)
