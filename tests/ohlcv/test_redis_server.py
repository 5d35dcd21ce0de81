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


def test_a_restart_keeps_the_port_and_with_aof_the_data():
    with ThrowawayRedis(extra_args=["--appendonly", "yes"]) as server:
        port = server.port
        server.client().set("key", "value")
        server.restart(down_seconds=0.1)
        assert server.port == port
        assert server.client().get("key") == b"value"
