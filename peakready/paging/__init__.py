"""Observing pages during a run: the alarm topics' notifications and the incidents they
open, recorded in the run folder's ``paging/`` (docs/paging.md).

``config`` reads ``target.paging`` from the plan, ``preflight`` checks it against the
account, ``sqs`` is the temporary queue used on AWS, ``pagerduty`` the REST incident
listing, ``observer`` ties them to a run.
"""
