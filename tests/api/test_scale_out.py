"""Rate limits shared through a real Redis server, as several API workers would share them."""

import secrets

from fastapi.testclient import TestClient

from char_pipeline.api.app import create_app
from char_pipeline.settings import Settings
from tests.services import REDIS_URL, require_service


def test_two_api_instances_share_one_rate_limit_in_redis(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    settings = Settings(pipeline_home=tmp_path, rate_limit_storage=REDIS_URL, url_signing_key="k")
    first, second = create_app(settings), create_app(settings)
    _, plaintext = first.state.char.jobs.create_key(
        "shared-" + secrets.token_hex(3), ["control:write"]
    )
    headers = {"Authorization": f"Bearer {plaintext}"}
    try:
        with TestClient(first) as a, TestClient(second) as b:
            statuses = [
                (a if i % 2 else b).post("/v1/control/latent?length=1", headers=headers).status_code
                for i in range(52)
            ]
        assert statuses[:50] == [200] * 50 and statuses[50:] == [429, 429]
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter("*LIMITER*"):
            client.delete(key)
