"""Python SDK for the Character AI API v1, shaped like the seed's sample code.

client = Client(api_key="sk_live_…", base_url="http://127.0.0.1:8000")
ref = client.upload_reference_image("subject.jpg")
z_seq = client.control.text(reference_image_id=ref.id, prompt="a cat playing piano", steps=8, model="custom-nlp")
video = client.generate.video(reference_image_id=ref.id, control_type="text", z_sequence=z_seq)
print(video.video_url)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    """An error answer from the API, with the seed's envelope fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details, self.retry_after = (
            status,
            code,
            message,
            details or {},
            retry_after,
        )


class Result(dict):
    """A response body with attribute access (``ref.id``, ``video.video_url``)."""

    def __getattr__(self, name: str) -> Any:
        if name == "id":
            for key in ("reference_image_id", "job_id"):
                if key in self:
                    return self[key]
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class _Section:
    def __init__(self, client: Client) -> None:
        self._client = client


class Control(_Section):
    def pose(
        self, *, reference_image_id: str, keypoints: list[dict], frame_index: int = 0
    ) -> list[float]:
        body = {
            "reference_image_id": reference_image_id,
            "keypoints": keypoints,
            "frame_index": frame_index,
        }
        return self._client.request("POST", "/v1/control/pose", json=body)["z_t"]

    def text(
        self, *, reference_image_id: str, prompt: str, steps: int, model: str = "clip"
    ) -> list[list[float]]:
        body = {
            "reference_image_id": reference_image_id,
            "prompt": prompt,
            "steps": steps,
            "model": model,
        }
        return self._client.request("POST", "/v1/control/text", json=body)["z_sequence"]

    def latent(
        self, *, length: int, seed: int | None = None, distribution: str = "gaussian"
    ) -> list[list[float]]:
        params = {
            "length": length,
            "distribution": distribution,
            **({"seed": seed} if seed is not None else {}),
        }
        return self._client.request("POST", "/v1/control/latent", params=params)["z_sequence"]


class Generate(_Section):
    def frame(self, *, gpu_type: str | None = None, **body: Any) -> Result:
        return self._client.request(
            "POST", "/v1/generate/frame", json=body, headers=_gpu(gpu_type, None)
        )

    def video(
        self,
        *,
        gpu_type: str | None = None,
        instance_count: int | None = None,
        wait: bool = True,
        **body: Any,
    ) -> Result:
        """Render a video; an async job (202) is awaited unless ``wait=False``."""
        if "async_" in body:
            body["async"] = body.pop("async_")
        answer = self._client.request(
            "POST", "/v1/generate/video", json=body, headers=_gpu(gpu_type, instance_count)
        )
        return self._settle(answer, wait)

    def nerf(
        self,
        *,
        gpu_type: str | None = None,
        instance_count: int | None = None,
        wait: bool = True,
        **body: Any,
    ) -> Result:
        """A 3D model or a video along ``camera_trajectory`` (a list of camera dicts; see
        ``char_pipeline.engine.nerf.orbit``); an async job is awaited unless ``wait=False``."""
        if "async_" in body:
            body["async"] = body.pop("async_")
        answer = self._client.request(
            "POST", "/v1/generate/nerf", json=body, headers=_gpu(gpu_type, instance_count)
        )
        return self._settle(answer, wait)

    def _settle(self, answer: Result, wait: bool) -> Result:
        if "job_id" in answer and "status_url" in answer and "etag" not in answer:
            if not wait:
                return answer
            job = self._client.jobs.wait(answer["job_id"])
            return Result(job["result"])
        return answer


class Jobs(_Section):
    def get(self, job_id: str, *, wait: float | None = None) -> Result:
        """The job; with ``wait``, the server answers when its status changes (≤ 60 s)."""
        params = {"wait": wait} if wait else None
        timeout = (wait or 0) + 30.0
        return self._client.request("GET", f"/v1/jobs/{job_id}", params=params, timeout=timeout)

    def list(self, **filters: Any) -> Result:
        """One page, newest first: status, kind, batch_id, created_after/before, cursor, limit."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._client.request("GET", "/v1/jobs", params=params)

    def iterate(self, **filters: Any):
        """Every job matching the filters, following the cursor page by page."""
        cursor = None
        while True:
            page = self.list(**filters, cursor=cursor)
            yield from (Result(job) for job in page["data"])
            if not page["has_more"]:
                return
            cursor = page["next_cursor"]

    def cancel(self, job_id: str) -> Result:
        return self._client.request("POST", f"/v1/jobs/{job_id}/cancel")

    def wait(self, job_id: str, *, timeout: float = 600.0, interval: float = 1.0) -> Result:
        """Long-poll until the job ends; honours Retry-After and backs off on 429."""
        deadline = time.monotonic() + timeout
        delay = interval
        while True:
            left = deadline - time.monotonic()
            try:
                job = self.get(job_id, wait=max(1.0, min(left, 60.0)))
            except ApiError as exc:
                if exc.status != 429 or time.monotonic() > deadline:
                    raise
                time.sleep(exc.retry_after or delay)
                delay = min(delay * 2, 32.0)
                continue
            if job["status"] == "completed":
                return job
            if job["status"] in ("failed", "cancelled"):
                error = job.get("error") or {
                    "code": "Cancelled",
                    "message": f"Job {job_id} was cancelled.",
                }
                raise ApiError(
                    500 if job["status"] == "failed" else 409,
                    error.get("code", "JobFailed"),
                    error.get("message", "The job failed."),
                    error.get("details"),
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} is still {job['status']} after {timeout} s.")


def _gpu(gpu_type: str | None, instance_count: int | None) -> dict[str, str]:
    headers = {}
    if gpu_type:
        headers["X-GPU-Type"] = gpu_type
    if instance_count:
        headers["X-Instance-Count"] = str(instance_count)
    return headers


class Client:
    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 4,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.api_key = api_key or os.environ.get("CHAR_API_KEY", "")
        self.max_retries = max_retries
        self._http = http_client or httpx.Client(
            base_url=base_url or os.environ.get("CHAR_API_URL", "http://127.0.0.1:8000"),
            timeout=timeout,
        )
        self.control = Control(self)
        self.generate = Generate(self)
        self.jobs = Jobs(self)

    def request(self, method: str, path: str, **kwargs: Any) -> Result:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        for attempt in range(self.max_retries + 1):
            response = self._http.request(method, path, headers=headers, **kwargs)
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable or attempt == self.max_retries:
                break
            # Honour Retry-After; else exponential backoff (1, 2, 4 … up to 32 s), as the seed advises.
            wait = float(response.headers.get("Retry-After", 0) or 0) or min(2**attempt, 32)
            time.sleep(wait)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "HTTPError", "message": response.text[:200]}
            retry_after = (
                float(response.headers["Retry-After"])
                if "Retry-After" in response.headers
                else None
            )
            raise ApiError(
                response.status_code,
                error.get("code", ""),
                error.get("message", ""),
                error.get("details"),
                retry_after,
            )
        return Result(response.json())

    def upload_reference_image(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        keypoints: list[dict] | None = None,
    ) -> Result:
        """Upload a reference; ``keypoints`` (x, y in 0..1, COCO-17 names) rig it instead
        of pose detection."""
        file = Path(path)
        data = {"name": name or file.name}
        if keypoints is not None:
            data["keypoints"] = json.dumps(keypoints)
        with file.open("rb") as handle:
            return self.request(
                "POST", "/v1/reference-image", files={"image": (file.name, handle)}, data=data
            )

    def reference_image(self, reference_image_id: str) -> Result:
        return self.request("GET", f"/v1/reference-image/{reference_image_id}")

    def features(self, reference_image_id: str, model: str = "cnn") -> Result:
        return self.request(
            "GET", f"/v1/reference-image/{reference_image_id}/features", params={"model": model}
        )

    def download(self, url: str, destination: str | os.PathLike[str]) -> Path:
        """Fetch a signed link (no API key needed) to a file."""
        response = self._http.get(url)
        if response.status_code >= 400:
            raise ApiError(response.status_code, "DownloadFailed", response.text[:200])
        target = Path(destination)
        target.write_bytes(response.content)
        return target

    def close(self) -> None:
        self._http.close()
