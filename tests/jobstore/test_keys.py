"""API keys: hashed at rest, scoped, revocable; webhook secrets rotate with an overlap."""

import pytest

from char_pipeline.jobstore import hash_key


def test_keys_verify_rotate_and_revoke(job_store):
    key, plaintext = job_store.create_key("ci", ["generate:write"])
    assert job_store.verify_key(plaintext).id == key.id
    assert job_store.verify_key(plaintext + "x") is None
    with pytest.raises(ValueError):
        job_store.create_key("bad", ["admin"])
    stored = job_store.get_key(key.id)
    assert stored.prefix and plaintext.startswith(stored.prefix)
    assert hash_key(plaintext) != plaintext  # only the hash is kept
    first = job_store.webhook_secrets(key.id)
    new = job_store.rotate_webhook_secret(key.id)
    assert job_store.webhook_secrets(key.id)[:2] == [new, first[0]]  # both sign for a while
    assert [k.id for k in job_store.list_keys()] == [key.id]
    assert job_store.revoke_key(key.id)
    assert job_store.verify_key(plaintext) is None
    assert not job_store.revoke_key(key.id)
    assert job_store.rotate_webhook_secret("key_missing") is None
