// SDK for the Character AI API v1, shaped like the seed's §10.3 sample. ESM, no dependencies:
// fetch, FormData, Blob and WebCrypto are built into Node ≥ 18 and every browser.

const DEFAULT_BASE_URL = "https://api.aicharacter.studio";
const MAX_BACKOFF_MS = 32_000;

/** An error answer of the API, with the envelope's code, message and details. */
export class ApiError extends Error {
  constructor(status, code, message, details = {}, retryAfter = null) {
    super(`${status} ${code}: ${message}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

function env(name) {
  return typeof process !== "undefined" && process.env ? process.env[name] : undefined;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(response) {
  const value = response.headers.get("retry-after");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function computeHeaders(options = {}) {
  const headers = {};
  if (options.gpuType) headers["X-GPU-Type"] = options.gpuType;
  if (options.instanceCount) headers["X-Instance-Count"] = String(options.instanceCount);
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  if (options.ifNoneMatch) headers["If-None-Match"] = options.ifNoneMatch;
  return headers;
}

async function blobFrom(input) {
  if (typeof Blob !== "undefined" && input instanceof Blob) return input;
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) return new Blob([input]);
  if (typeof input === "string" || input instanceof URL) {
    const { readFile } = await import("node:fs/promises"); // Node only: a path on disk
    return new Blob([await readFile(input)]);
  }
  throw new TypeError("upload() takes a file path, a Blob/File, or bytes");
}

function basename(input) {
  return typeof input === "string" ? input.split(/[\\/]/).pop() : input?.name ?? "image";
}

export class AiCharacterClient {
  /**
   * @param {object} [options]
   * @param {string} [options.apiKey] default: $AICHARACTER_API_KEY or $CHAR_API_KEY
   * @param {string} [options.baseUrl] default: $CHAR_API_URL or https://api.aicharacter.studio
   */
  constructor(options = {}) {
    this.apiKey = options.apiKey ?? env("AICHARACTER_API_KEY") ?? env("CHAR_API_KEY") ?? "";
    this.baseUrl = (options.baseUrl ?? env("CHAR_API_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.maxRetries = options.maxRetries ?? 4;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const client = this;

    this.referenceImage = {
      /** Upload an image (a path in Node, a Blob/File, or bytes); optional keypoints rig it. */
      async upload(input, { name, keypoints } = {}) {
        const form = new FormData();
        form.append("image", await blobFrom(input), name ?? basename(input));
        if (name) form.append("name", name);
        if (keypoints) form.append("keypoints", JSON.stringify(keypoints));
        return client.request("POST", "/v1/reference-image", { body: form });
      },
      get: (id) => client.request("GET", `/v1/reference-image/${encodeURIComponent(id)}`),
      mask: (id, { format = "base64" } = {}) =>
        client.request("GET", `/v1/reference-image/${encodeURIComponent(id)}/mask`, {
          query: { format },
        }),
      features: (id, { model = "cnn" } = {}) =>
        client.request("GET", `/v1/reference-image/${encodeURIComponent(id)}/features`, {
          query: { model },
        }),
    };

    this.control = {
      pose: (body) => client.request("POST", "/v1/control/pose", { json: body }),
      text: (body) => client.request("POST", "/v1/control/text", { json: body }),
      latent: ({ length, seed, distribution } = {}) =>
        client.request("POST", "/v1/control/latent", { query: { length, seed, distribution } }),
    };

    const generate = (path) => (body, options = {}) =>
      client.request("POST", path, {
        json: body,
        headers: computeHeaders(options),
        query: { custom_cache_duration_seconds: options.cacheSeconds },
      });
    this.generate = {
      frame: generate("/v1/generate/frame"),
      video: generate("/v1/generate/video"),
      nerf: generate("/v1/generate/nerf"),
      batch: generate("/v1/batch/video"),
    };

    this.jobs = {
      /** The job; with `wait` (seconds, ≤ 60) the server answers when its status changes. */
      get: (id, { wait } = {}) =>
        client.request("GET", `/v1/jobs/${encodeURIComponent(id)}`, {
          query: { wait },
          timeoutMs: (wait ?? 0) * 1000 + client.timeoutMs,
        }),
      /** One page, newest first: { data, has_more, next_cursor }. */
      list: (filters = {}) => client.request("GET", "/v1/jobs", { query: filters }),
      /** Every job matching the filters, page after page. */
      async *iterate(filters = {}) {
        let cursor;
        for (;;) {
          const page = await client.jobs.list({ ...filters, cursor });
          yield* page.data;
          if (!page.has_more) return;
          cursor = page.next_cursor;
        }
      },
      cancel: (id) => client.request("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`),
      /**
       * Long-poll until the job ends. Resolves with the completed job; rejects with an
       * ApiError for a failed or cancelled one, or on timeout.
       */
      async wait(id, { timeoutMs = 600_000 } = {}) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const left = deadline - Date.now();
          if (left <= 0) throw new ApiError(408, "Timeout", `Job ${id} did not end in ${timeoutMs} ms.`);
          const job = await client.jobs.get(id, { wait: Math.max(1, Math.min(60, Math.floor(left / 1000))) });
          if (job.status === "completed") return job;
          if (job.status === "failed") {
            const error = job.error ?? {};
            throw new ApiError(500, error.code ?? "JobFailed", error.message ?? "The job failed.", error.details);
          }
          if (job.status === "cancelled") throw new ApiError(409, "Cancelled", `Job ${id} was cancelled.`);
        }
      },
    };
  }

  /** One API call: JSON in and out, the error envelope as ApiError, 429/5xx retried with
   * Retry-After or exponential backoff (1 s doubling to 32 s), as the seed's FAQ advises. */
  async request(method, path, { json, body, headers = {}, query, timeoutMs } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const sent = { Authorization: `Bearer ${this.apiKey}`, Accept: "application/json", ...headers };
    let payload = body;
    if (json !== undefined) {
      sent["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    for (let attempt = 0; ; attempt += 1) {
      const response = await this.fetch(url, {
        method,
        headers: sent,
        body: payload,
        signal: AbortSignal.timeout(timeoutMs ?? this.timeoutMs),
      });
      const retryable = response.status === 429 || response.status >= 500;
      if (retryable && attempt < this.maxRetries) {
        await response.body?.cancel();
        await sleep(retryAfterMs(response) ?? Math.min(1000 * 2 ** attempt, MAX_BACKOFF_MS));
        continue;
      }
      if (response.status === 304) return { notModified: true, etag: response.headers.get("etag") };
      const text = await response.text();
      let data;
      try {
        data = text ? JSON.parse(text) : {};
      } catch {
        data = { error: { code: "HTTPError", message: text.slice(0, 200) } };
      }
      if (!response.ok) {
        const error = data.error ?? {};
        const wait = retryAfterMs(response);
        throw new ApiError(
          response.status,
          error.code ?? "HTTPError",
          error.message ?? response.statusText,
          error.details ?? {},
          wait === null ? null : wait / 1000,
        );
      }
      return data;
    }
  }
}

function base64ToBytes(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function bytesToBase64(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function timingSafeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function header(headers, name) {
  if (typeof headers?.get === "function") return headers.get(name);
  const found = Object.keys(headers ?? {}).find((key) => key.toLowerCase() === name);
  return found === undefined ? null : headers[found];
}

/**
 * Standard Webhooks verification of a callback: `secrets` is the key's whsec_… secret (or
 * several while rotating), `headers` the request's, `body` its raw text. Resolves with the
 * parsed payload; rejects when no signature matches or the timestamp is outside the tolerance.
 */
export async function verifyWebhook(secrets, headers, body, { toleranceSeconds = 300, now = Date.now() } = {}) {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("Missing webhook-id, webhook-timestamp or webhook-signature.");
  const seconds = Number(timestamp);
  if (!Number.isInteger(seconds) || Math.abs(now / 1000 - seconds) > toleranceSeconds) {
    throw new WebhookVerificationError("The webhook timestamp is outside the tolerance.");
  }
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  const signed = new TextEncoder().encode(`${id}.${timestamp}.${text}`);
  const offered = signatures.split(" ").map((entry) => entry.split(",", 2)).filter(([version]) => version === "v1").map(([, sig]) => sig);
  for (const secret of [].concat(secrets)) {
    const key = await crypto.subtle.importKey(
      "raw",
      base64ToBytes(secret.replace(/^whsec_/, "")),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const expected = bytesToBase64(await crypto.subtle.sign("HMAC", key, signed));
    if (offered.some((sig) => timingSafeEqual(sig, expected))) return JSON.parse(text);
  }
  throw new WebhookVerificationError("No webhook signature matches.");
}

export class WebhookVerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

export const webhooks = { verify: verifyWebhook };
export default AiCharacterClient;
