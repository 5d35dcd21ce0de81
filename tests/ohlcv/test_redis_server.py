import pytest

from ohlcv.redis_server import ThrowawayRedis


def test_only_a_server_this_object_started_can_be_flushed():
    server = ThrowawayRedis()
    with pytest.raises(RuntimeError, match="refusing to flush"):
        server.flush()  # never started: nothing of ours to empty
    with server:
        server.client().set("k", "v")
        server.flush()
        assert server.client().dbsize() == 0
    with pytest.raises(RuntimeError, match="refusing to flush"):
        server.flush()  # stopped
