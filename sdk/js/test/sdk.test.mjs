// The SDK against a live API (started by tests/sdk/test_js_sdk.py, which sets CHAR_API_URL,
// CHAR_API_KEY, CHAR_TEST_IMAGE and CHAR_WEBHOOK_SAMPLE), plus what needs no server.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { AiCharacterClient, ApiError, verifyWebhook, webhooks } from "@aicharacter/studio";

const here = dirname(fileURLToPath(import.meta.url));
const live = process.env.CHAR_API_URL ? {} : { skip: "no live API (CHAR_API_URL unset)" };
const image = process.env.CHAR_TEST_IMAGE;

test("the seed's §10.3 sample runs as written", live, () => {
  // Verbatim but for the image path, which must exist here.
  const sample = readFileSync(join(here, "..", "examples", "seed-10.3.mjs"), "utf8");
  const copy = join(here, "..", `.seed-sample-${process.pid}.mjs`); // inside the package: its name resolves
  writeFileSync(copy, sample.replace("/path/to/subject.jpg", image));
  try {
    const run = spawnSync(process.execPath, [copy], { encoding: "utf8", env: process.env, timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^Frame URL: https?:\/\/\S+\/v1\/files\/\S+/m);
  } finally {
    rmSync(copy, { force: true });
  }
});

test("references, controls, generation and jobs", live, async () => {
  const client = new AiCharacterClient({ apiKey: process.env.CHAR_API_KEY });
  const uploaded = await client.referenceImage.upload(image, { name: "subject" });
  assert.match(uploaded.reference_image_id, /^ref_[0-9a-f]{16}$/);
  const id = uploaded.reference_image_id;
  let meta = await client.referenceImage.get(id);
  for (let i = 0; meta.status === "pending" && i < 120; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    meta = await client.referenceImage.get(id);
  }
  assert.equal(meta.status, "processed");
  const mask = await client.referenceImage.mask(id);
  assert.ok(mask.mask.length > 100);
  const features = await client.referenceImage.features(id);
  assert.ok(features.feature_dim > 0 && features.f_identity.length === features.feature_dim);

  const { z_sequence } = await client.control.latent({ length: 3, seed: 7 });
  assert.equal(z_sequence.length, 3);
  const text = await client.control.text({ reference_image_id: id, prompt: "wave", steps: 4, model: "custom-nlp" });
  assert.equal(text.z_sequence.length, 4);

  const video = await client.generate.video(
    { reference_image_id: id, control_type: "latent", z_sequence, resolution: "64x64", format: "gif" },
    { idempotencyKey: `js-${process.pid}` },
  );
  assert.equal(video.frames, 3);
  assert.match(video.video_url, /\/v1\/files\//);
  const batch = await client.generate.batch({
    tasks: [
      { reference_image_id: id, control_type: "latent", z_sequence, resolution: "64x64" },
      { reference_image_id: "ref_0000000000000000", control_type: "latent", z_sequence, resolution: "64x64" },
    ],
  });
  assert.equal(batch.results[1].error.code, "NotFound");
  const nerf = await client.generate.nerf({
    reference_image_id: id,
    camera_trajectory: [{ position: [0, 0, 2.5] }],
    output_format: "nerf_model",
  });
  assert.ok(nerf.model_url || nerf.nerf_model_url || nerf.model, JSON.stringify(nerf));

  // An async job (new controls: nothing cached answers it) is listed, long-polled and
  // cancelled (no Dagster daemon here: it stays pending); waiting on it then rejects.
  const fresh = await client.control.latent({ length: 3, seed: 8 });
  const accepted = await client.generate.video({
    reference_image_id: id, control_type: "latent", z_sequence: fresh.z_sequence, resolution: "64x64", async: true,
  });
  assert.match(accepted.job_id, /^job_/);
  const page = await client.jobs.list({ kind: "video", limit: 10 });
  assert.equal(page.data[0].job_id, accepted.job_id);
  const seen = [];
  for await (const job of client.jobs.iterate({ limit: 1 })) seen.push(job.job_id);
  assert.ok(seen.includes(accepted.job_id));
  const started = Date.now();
  const polled = await client.jobs.get(accepted.job_id, { wait: 1 });
  assert.ok(Date.now() - started >= 900 && ["pending", "processing"].includes(polled.status));
  const cancelled = await client.jobs.cancel(accepted.job_id);
  assert.equal(cancelled.status, "cancelled");
  await assert.rejects(client.jobs.wait(accepted.job_id), (error) => error instanceof ApiError && error.code === "Cancelled");

  await assert.rejects(
    client.generate.frame({ reference_image_id: id, control_type: "latent", z_t: [1, 2], resolution: "64x64" }),
    (error) => error instanceof ApiError && error.status === 422 && error.code === "UnprocessableEntity",
  );
  const stranger = new AiCharacterClient({ apiKey: "sk_live_not_a_key" });
  await assert.rejects(stranger.jobs.list(), (error) => error.status === 401 && error.code === "Unauthorized");
});

test("429 is retried after Retry-After, then the answer is returned", async () => {
  const calls = [];
  const fakeFetch = async (url) => {
    calls.push(Date.now());
    if (calls.length === 1) {
      return new Response(JSON.stringify({ error: { code: "RateLimitExceeded", message: "slow down", details: {} } }), {
        status: 429,
        headers: { "Retry-After": "1", "Content-Type": "application/json" },
      });
    }
    return new Response(JSON.stringify({ ok: String(url) }), { status: 200 });
  };
  const client = new AiCharacterClient({ apiKey: "k", baseUrl: "http://127.0.0.1:9", fetch: fakeFetch });
  const answer = await client.jobs.list({ status: "pending" });
  assert.equal(calls.length, 2);
  assert.ok(calls[1] - calls[0] >= 950, "waited for Retry-After");
  assert.equal(answer.ok, "http://127.0.0.1:9/v1/jobs?status=pending");
  const refusing = new AiCharacterClient({ apiKey: "k", baseUrl: "http://127.0.0.1:9", maxRetries: 0, fetch: fakeFetchAlways429 });
  await assert.rejects(refusing.jobs.list(), (error) => error.status === 429 && error.retryAfter === 2);
});

async function fakeFetchAlways429() {
  return new Response(JSON.stringify({ error: { code: "RateLimitExceeded", message: "no", details: {} } }), {
    status: 429,
    headers: { "Retry-After": "2" },
  });
}

test("webhook signatures verify, and tampering or old timestamps do not", async () => {
  const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
  const body = JSON.stringify({ job_id: "job_1", status: "completed" });
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", Buffer.from(secret.slice(6), "base64"))
    .update(`msg_1.${timestamp}.${body}`)
    .digest("base64");
  const headers = { "webhook-id": "msg_1", "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` };
  assert.deepEqual(await verifyWebhook(secret, headers, body), JSON.parse(body));
  assert.deepEqual(await webhooks.verify(["whsec_b3RoZXI=", secret], new Headers(headers), body), JSON.parse(body));
  await assert.rejects(verifyWebhook(secret, headers, body.replace("completed", "failed")), /No webhook signature/);
  await assert.rejects(verifyWebhook(secret, headers, body, { now: (timestamp + 3600) * 1000 }), /tolerance/);
  await assert.rejects(verifyWebhook(secret, {}, body), /Missing/);
});

test("a callback signed by the server verifies", { skip: process.env.CHAR_WEBHOOK_SAMPLE ? false : "no CHAR_WEBHOOK_SAMPLE" }, async () => {
  const sample = JSON.parse(process.env.CHAR_WEBHOOK_SAMPLE);
  const now = Number(sample.headers["webhook-timestamp"]) * 1000;
  assert.deepEqual(await verifyWebhook(sample.secret, sample.headers, sample.body, { now }), JSON.parse(sample.body));
});
