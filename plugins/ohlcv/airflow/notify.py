"""The andon cord: tell people when a run ends red or the cache goes stale, through Airflow's
own notifier classes.

The Airflow Variable ``ohlcv_notifiers`` is a JSON list of notifiers, each
``{"class": "<dotted path of a BaseNotifier subclass>", "kwargs": {...}}``: any provider's
(``airflow.providers.slack.notifications.slack.SlackNotifier``,
``airflow.providers.smtp.notifications.smtp.SmtpNotifier``, ...) or your own. Each is called
as Airflow calls an ``on_failure_callback`` notifier: with the task's context, in which
``ohlcv`` holds the event (``event``, ``message`` and its details), so a template such as
``"{{ ohlcv.message }}"`` renders it. Without the Variable, ``LogNotifier`` writes a warning
to the task log.

A notifier that cannot be built or fails to send is not swallowed: ``notify`` tries every
notifier, then raises ``NotifierFailed`` naming each one that failed and why.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from ohlcv.errors import ConfigurationError

log = logging.getLogger(__name__)

RUN_FAILED = "run_failed"
CACHE_STALE = "cache_stale"
#: a session's market table still missing at OHLCV_TABLE_DEADLINE
TABLE_MISSING = "table_missing"
VARIABLE = "ohlcv_notifiers"
#: sessions without a published run after which the cache counts as stale (Variable ohlcv_stale_sessions)
STALE_SESSIONS = 3


class NotifierFailed(ConfigurationError):
    """A configured notifier could not be built or could not send."""


class LogNotifier(BaseNotifier):
    """Writes the event to the task log (the notifier when none is configured)."""

    template_fields = ("message",)

    def __init__(self, message: str = "[ohlcv {{ ohlcv.event }}] {{ ohlcv.message }}") -> None:
        super().__init__()
        self.message = message

    def notify(self, context: Any) -> None:
        log.warning("%s", self.message)


def configured() -> list[BaseNotifier]:
    """The notifiers the Variable ``ohlcv_notifiers`` names (``LogNotifier`` when it is unset).

    Raises ``NotifierFailed`` when the Variable cannot be read as notifiers.
    """
    from airflow.sdk import Variable

    text = Variable.get(VARIABLE, default=None)
    if not text:
        return [LogNotifier()]
    try:
        specs = json.loads(text)
        if not isinstance(specs, list):
            raise ValueError("expected a JSON list")
        return [_build(spec) for spec in specs]
    except (ValueError, TypeError, KeyError, ImportError, AttributeError) as exc:
        raise NotifierFailed(f"Variable {VARIABLE} cannot be used: {type(exc).__name__}: {exc}") from exc


def _build(spec: dict[str, Any]) -> BaseNotifier:
    module, _, name = spec["class"].rpartition(".")
    notifier_class = getattr(importlib.import_module(module), name)
    if not (isinstance(notifier_class, type) and issubclass(notifier_class, BaseNotifier)):
        raise TypeError(f"{spec['class']} is not a BaseNotifier")
    return notifier_class(**spec.get("kwargs", {}))


def notify(event: str, message: str, context: dict[str, Any], **details: Any) -> None:
    """Send one event to every configured notifier, with ``context["ohlcv"]`` describing it.

    Raises ``NotifierFailed`` after trying them all if any could not be built or sent.
    """
    context = {**context, "ohlcv": {"event": event, "message": message, **details}}
    failures = []
    for notifier in configured():
        try:
            notifier(context)
        except Exception as exc:  # a provider's own errors: reported together below
            log.exception("notifier %s failed for %s", type(notifier).__name__, event)
            failures.append(f"{type(notifier).__name__}: {type(exc).__name__}: {exc}")
    if failures:
        raise NotifierFailed(f"{event} could not be sent: " + "; ".join(failures))


def _stale_sessions(value: Any) -> int:
    try:
        allowed = int(str(value).strip())
    except ValueError:
        allowed = -1
    if allowed < 0:
        raise ConfigurationError(
            f"the Variable ohlcv_stale_sessions={value!r}: give how many sessions the cut may lag, a whole number >= 0"
        )
    return allowed


def warn_if_stale(store, as_of: dt.date, context: dict[str, Any]) -> str:
    """Tell people when the published cut is more than ``ohlcv_stale_sessions`` behind; return
    why notifying failed ("" when it did not), for ``finish_run`` to end the run red with."""
    from airflow.sdk import Variable

    from ohlcv import calendar

    published = store.meta().last_update_at
    if published is None or published >= as_of:
        return ""
    behind = len(calendar.sessions(published, as_of)) - 1
    allowed = _stale_sessions(Variable.get("ohlcv_stale_sessions", default=STALE_SESSIONS))
    if behind <= allowed:
        return ""
    try:
        notify(
            CACHE_STALE,
            f"the cache is {behind} sessions behind: the published cut is {published}, this run is as of {as_of}",
            context, published=published.isoformat(), as_of=as_of.isoformat(), sessions_behind=behind,
        )  # fmt: skip
    except NotifierFailed as exc:
        log.error("%s; the run goes on and ends red", exc)
        return str(exc)
    return ""
