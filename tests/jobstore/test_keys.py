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


def test_accounts_group_keys(job_store):
    solo, _ = job_store.create_key("solo", ["generate:write"])
    assert solo.account_id == solo.id  # no account given: the key is an account of its own
    first, plaintext = job_store.create_key("a", ["generate:write"], account="studio-1")
    second, _ = job_store.create_key("b", ["generate:write"], account="studio-1")
    assert first.account_id == second.account_id == "studio-1"
    assert job_store.verify_key(plaintext).account_id == "studio-1"
    with pytest.raises(ValueError, match="account"):
        job_store.create_key("c", ["generate:write"], account="no spaces allowed")


def test_reference_owners_dedupe_per_account(job_store):
    sha = "ab" * 32
    first, created = job_store.own_reference("studio-1", sha)
    assert created and first.startswith("ref_") and sha[:16] not in first
    assert job_store.own_reference("studio-1", sha) == (first, False)
    other, created = job_store.own_reference("studio-2", sha)
    assert created and other != first
    assert job_store.reference_account(first) == "studio-1"
    assert job_store.reference_account("ref_missing") is None
