"""The render cache: the last response per ETag, until it expires."""


def test_the_cache_keeps_the_last_answer_until_it_expires(job_store):
    job_store.cache_put("etag1", {"a": 1}, ttl_seconds=60)
    job_store.cache_put("etag1", {"a": 2}, ttl_seconds=60)
    assert job_store.cache_get("etag1") == {"a": 2}
    job_store.cache_put("etag2", {"a": 3}, ttl_seconds=-1)
    assert job_store.cache_get("etag2") is None
    assert job_store.cache_get("never") is None
