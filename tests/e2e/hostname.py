"""``[core] hostname_callable`` of the Celery workers a local stack starts: the name each was
started under, so task instances tell the workers apart as they would separate machines."""

import os


def worker_hostname() -> str:
    return os.environ["OHLCV_TEST_WORKER_HOSTNAME"]
