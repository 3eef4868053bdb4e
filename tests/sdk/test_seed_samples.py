"""The seed's SDK samples (§10.2 Python, §10.3 JavaScript) run as written against a live API,
and the JavaScript SDK's own tests (node's test runner) pass against it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from char_pipeline.api.app import create_app
from char_pipeline.jobstore import api_keys, hash_key, now
from char_pipeline.settings import Settings
from char_pipeline.webhooks import sign_headers
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
SEED_KEY = "sk_live_abc123"  # the key both samples are written with


PYTHON_SAMPLE = ROOT / "sdk" / "python" / "seed_10_2.py"
JS_SAMPLE = ROOT / "sdk" / "js" / "examples" / "seed-10.3.mjs"


def test_the_samples_are_the_seeds_own():
    """The copies in sdk/ are the seed's §10.2 and §10.3, character for character."""
    seed = SEEDS / "000_12c6d9fe9ca9830c.txt"
    if not seed.exists():
        pytest.skip(f"the seed is not beside this checkout ({seed})")
    text = seed.read_text()
    python = re.search(r"from aicharacter import Client\n.*?video\.video_url\)", text, re.S)
    javascript = re.search(r"import \{ AiCharacterClient \}.*?\nrun\(\);", text, re.S)
    assert python.group(0) + "\n" == PYTHON_SAMPLE.read_text()
    assert javascript.group(0) + "\n" == JS_SAMPLE.read_text()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    """The API on loopback (uvicorn in a thread), with the samples' key registered."""
    home = tmp_path_factory.mktemp("sdk_home")
    port = free_port()
    settings = Settings(
        pipeline_home=home,
        api_port=port,
        url_signing_key="sdk-tests",
        rate_limit="1000/minute",
        rate_limit_burst="500/10 seconds",
        # The sample asks for the seed's default text model, 'clip', which is not installed
        # here; this deployment answers it with MiniLM and says so (served_by).
        text_model_aliases="clip=custom-nlp",
    )
    app = create_app(settings)
    store = app.state.char.jobs
    with store.engine.begin() as connection:  # a key made elsewhere, imported as its hash
        connection.execute(
            api_keys.insert().values(
                id="key_seedsample",
                name="seed samples",
                prefix=SEED_KEY[:12],
                key_hash=hash_key(SEED_KEY),
                scopes="control:write,generate:write,reference:read",
                created_at=now(),
                account_id="samples",
            )
        )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield settings.base_url, store
    server.should_exit = True
    thread.join(timeout=15)


def test_python_sample_runs_verbatim(live_api, image_paths, tmp_path):
    base_url, _ = live_api
    # Verbatim but for the image path, which must exist here.
    sample = PYTHON_SAMPLE.read_text().replace("/path/to/subject.jpg", str(image_paths["chelsea"]))
    script = tmp_path / "sample.py"
    script.write_text(sample)
    run = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "CHAR_API_URL": base_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    url = run.stdout.strip().removeprefix("Download at: ")
    assert url.startswith(f"{base_url}/v1/files/")
    video = httpx.get(url, timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"  # an MP4


def test_javascript_sdk_and_sample(live_api, image_paths):
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed; the JavaScript SDK's tests need it")
        pytest.skip("node is not installed: the JavaScript SDK's tests did not run")
    base_url, store = live_api
    key, plaintext = store.create_key(
        "js", ["reference:read", "control:write", "generate:write"], account="samples"
    )
    payload = json.dumps({"job_id": "job_1", "status": "completed"}, separators=(",", ":"))
    headers = sign_headers("msg_sample", payload, store.webhook_secrets(key.id))
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", "test/"],
        cwd=ROOT / "sdk" / "js",
        env={
            **os.environ,
            "CHAR_API_URL": base_url,
            "CHAR_API_KEY": plaintext,
            "CHAR_TEST_IMAGE": str(image_paths["chelsea"]),
            "CHAR_WEBHOOK_SAMPLE": json.dumps(
                {"secret": store.webhook_secrets(key.id)[0], "headers": headers, "body": payload}
            ),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "# skipped 0" in run.stdout or "ℹ skipped 0" in run.stdout, run.stdout[-3000:]
