"""A notifier for tests, configured like any provider's:
``AIRFLOW_VAR_OHLCV_NOTIFIERS='[{"class": "tests.dags.probe.Recorder", "kwargs": {...}}]'``."""

from airflow.sdk import BaseNotifier

CALLS: list[dict] = []


class Recorder(BaseNotifier):
    """Keeps what it was told, and its ``text`` rendered against the task's context."""

    template_fields = ("text",)

    def __init__(self, text: str = "{{ ohlcv.message }}") -> None:
        super().__init__()
        self.text = text

    def notify(self, context) -> None:
        CALLS.append({**context["ohlcv"], "text": self.text, "task_id": context["ti"].task_id})
