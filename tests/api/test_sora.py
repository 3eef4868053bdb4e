"""The Sora-style door (seed 002): characters from clips fetched from a loopback server (every
rule of the seed, the face policy on real photos, the best frame, usernames, tenancy), and
videos of @mentioned characters through Dagster runs."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import av
import cv2
import numpy as np
import pytest

from char_pipeline.engine.images import load_reference_image
from tests.api.conftest import (
    api_client,
    assert_envelope,
    run_jobs,
    served,
    static_files,
    wait_processed,
)

SIZE = 256


def write_clip(
    path: Path, image: np.ndarray, seconds: float, *, fps: int = 10, blur_until: float = 0.0
) -> Path:
    """A clip of ``image`` drifting slowly across a grey frame (H.264 in MP4/MOV, VP9 in
    WebM by the suffix); frames before ``blur_until`` seconds are motion-blurred."""
    codec = {".webm": "libvpx-vp9"}.get(path.suffix, "libx264")
    scale = SIZE * 0.8 / max(image.shape[:2])
    subject = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps, 1))
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for index in range(round(seconds * fps)):
            canvas = np.full((SIZE, SIZE, 3), 128, np.uint8)
            dx = int(8 * np.sin(index / fps))
            h, w = subject.shape[:2]
            y0, x0 = (SIZE - h) // 2, (SIZE - w) // 2 + dx
            canvas[y0 : y0 + h, max(0, x0) : x0 + w] = subject[:, max(0, -x0) : SIZE - x0][:, :w]
            if index / fps < blur_until:
                canvas = cv2.blur(canvas, (15, 1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory, image_paths):
    folder = tmp_path_factory.mktemp("clips")

    def rgb(name):
        return load_reference_image(image_paths[name].read_bytes()).rgb

    write_clip(folder / "gift_box.mp4", rgb("present"), 5)
    write_clip(folder / "cat.mov", rgb("chelsea"), 4)
    write_clip(folder / "stick_figure.webm", rgb("stick_figure"), 3)
    write_clip(folder / "astronaut.mp4", rgb("astronaut"), 4)
    write_clip(folder / "long.mp4", rgb("present"), 16, fps=5)
    write_clip(folder / "blurred_start.mp4", rgb("present"), 4, blur_until=2.0)
    (folder / "not_a_video.mp4").write_bytes(image_paths["present"].read_bytes())
    return folder


@pytest.fixture(scope="module")
def clip_server(clips):
    with static_files(clips) as url:
        yield url


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_client(tmp_path_factory.mktemp("sora_home"), outbound_allow="127.0.0.1") as client:
        yield client


def _create(api, auth, **fields):
    return api.post("/sora/v1/characters", headers=auth, json={"model": "sora-character", **fields})


def test_a_character_from_a_product_clip(api, auth, clip_server):
    response = _create(api, auth, url=f"{clip_server}/gift_box.mp4", timestamps="1,3")
    assert response.status_code == 200, response.text
    character = response.json()
    assert set(character) == {"id", "username", "display_name", "permalink", "profile_picture_url"}
    assert character["id"].startswith("char_") and character["username"].startswith("gift_box_")
    assert character["display_name"] == "Gift Box"
    assert character["permalink"].endswith(f"/sora/v1/characters/{character['username']}")
    link = urlsplit(character["profile_picture_url"])
    profile = api.get(f"{link.path}?{link.query}")
    assert profile.status_code == 200 and profile.content[:3] == b"\xff\xd8\xff"  # a JPEG
    by_name = api.get(f"/sora/v1/characters/{character['username']}", headers=auth).json()
    by_id = api.get(f"/sora/v1/characters/{character['id']}", headers=auth).json()
    assert by_name["id"] == by_id["id"] == character["id"]
    source = by_id["source"]
    assert 1.0 <= source["chosen_time_s"] <= 3.0 and len(source["frames"]) == 8
    assert source["video"]["duration_s"] == pytest.approx(5.0, abs=0.2)
    # The character is a reference like an upload: processed, then renderable.
    reference_id = by_id["reference_image_id"]
    assert wait_processed(api, auth, reference_id)["status"] == "processed"
    frame = api.post(
        "/v1/generate/frame",
        headers=auth,
        json={
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_t": [0.0] * 64,
            "resolution": "64x64",
            "output_format": "base64",
        },
    )
    assert frame.status_code == 200, frame.text


@pytest.mark.parametrize(
    ("fields", "status", "rule"),
    [
        ({"model": "sora-2"}, 422, "model"),
        ({"timestamps": "1-3"}, 422, "format"),
        ({"timestamps": "a,b"}, 422, "format"),
        ({"timestamps": "-1,1"}, 422, "start >= 0"),
        ({"timestamps": "1,1.5"}, 422, "1 <= end - start <= 3"),
        ({"timestamps": "0,3.5"}, 422, "1 <= end - start <= 3"),
        ({"timestamps": "4,6"}, 422, "end <= duration"),
        ({"url": "long.mp4"}, 422, "video <= 15 s"),
        ({"url": "not_a_video.mp4"}, 422, "format"),
        ({"url": "missing.mp4"}, 422, "fetch"),
        ({"url": "http://10.1.2.3/clip.mp4"}, 422, "outbound"),
        ({"video_id": "job_0000"}, 422, "url xor video_id"),
        ({"username": "No Spaces!"}, 422, "username"),
    ],
)
def test_every_rule_of_the_seed_is_a_clear_error(api, auth, clip_server, fields, status, rule):
    body = {"model": "sora-character", "url": "gift_box.mp4", "timestamps": "1.5,3.0", **fields}
    if not body["url"].startswith("http"):
        body["url"] = f"{clip_server}/{body['url']}"
    if fields.get("url", "").endswith("long.mp4"):
        body["timestamps"] = "1,3"
    if fields.get("timestamps") == "4,6":  # the gift box lasts 5 s
        body["timestamps"] = "4,5.5"
        body["url"] = f"{clip_server}/cat.mov"  # 4 s
    error = assert_envelope(api.post("/sora/v1/characters", headers=auth, json=body), status, "UnprocessableEntity")  # fmt: skip
    assert error["details"]["rule"] == rule, error


def test_a_real_human_face_is_refused_and_drawings_and_animals_pass(api, auth, clip_server):
    error = assert_envelope(
        _create(api, auth, url=f"{clip_server}/astronaut.mp4", timestamps="1,3"),
        422,
        "UnprocessableEntity",
    )
    assert (
        error["details"]["rule"] == "no real human faces" and error["details"]["face_score"] > 0.5
    )
    cat = _create(api, auth, url=f"{clip_server}/cat.mov", timestamps="0.5,2.5")
    assert cat.status_code == 200, cat.text
    drawing = _create(api, auth, url=f"{clip_server}/stick_figure.webm", timestamps="0,2")
    assert drawing.status_code == 200, drawing.text
    detail = api.get(f"/sora/v1/characters/{drawing.json()['id']}", headers=auth).json()
    assert detail["source"]["mask_source"] == "drawing"
    assert detail["source"]["video"]["codec"] == "vp9"


def test_the_sharpest_frame_of_the_segment_wins(api, auth, clip_server):
    response = _create(api, auth, url=f"{clip_server}/blurred_start.mp4", timestamps="1,4")
    assert response.status_code == 200, response.text
    source = api.get(f"/sora/v1/characters/{response.json()['id']}", headers=auth).json()["source"]
    assert source["chosen_time_s"] >= 2.0
    blurred = [f["sharpness"] for f in source["frames"] if f["time_s"] < 2.0]
    sharp = [f["sharpness"] for f in source["frames"] if f["time_s"] >= 2.0]
    assert max(blurred) < min(sharp)


def test_usernames_are_unique_per_account_and_characters_private(api, auth, clip_server):
    url = f"{clip_server}/gift_box.mp4"
    mine = _create(api, auth, url=url, timestamps="0,1", username="blue_box", display_name="Box")
    assert mine.status_code == 200, mine.text
    assert mine.json()["username"] == "blue_box" and mine.json()["display_name"] == "Box"
    taken = _create(api, auth, url=url, timestamps="0,1", username="blue_box")
    assert assert_envelope(taken, 409, "Conflict")["details"]["rule"] == "username unique"
    _, other_key = api.state.jobs.create_key("other", ["reference:read"], account="acct_other")
    other = {"Authorization": f"Bearer {other_key}"}
    assert_envelope(api.get("/sora/v1/characters/blue_box", headers=other), 404, "NotFound")
    assert api.get("/sora/v1/characters", headers=other).json()["data"] == []
    assert_envelope(api.delete("/sora/v1/characters/blue_box", headers=other), 404, "NotFound")
    # Another account may use the same username.
    theirs = _create(api, other, url=url, timestamps="0,1", username="blue_box")
    assert theirs.status_code == 200 and theirs.json()["id"] != mine.json()["id"]
    listing = api.get("/sora/v1/characters?limit=2", headers=auth).json()
    assert len(listing["data"]) == 2 and listing["has_more"]
    rest = api.get(f"/sora/v1/characters?after={listing['last_id']}", headers=auth).json()
    ids = {c["id"] for c in listing["data"]} | {c["id"] for c in rest["data"]}
    assert mine.json()["id"] in ids and theirs.json()["id"] not in ids
    deleted = api.delete("/sora/v1/characters/blue_box", headers=auth)
    assert deleted.json() == {
        "id": mine.json()["id"],
        "object": "character.deleted",
        "deleted": True,
    }
    assert_envelope(api.get("/sora/v1/characters/blue_box", headers=auth), 404, "NotFound")


SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "002_15526eb81e8c0e80.txt"


def test_the_seeds_python_sample_runs_against_the_served_api(api, auth, clip_server, capsys):
    """The seed's snippet, changed only in its base URL, key and (no internet here) the
    video's URL, against this API served by uvicorn on loopback."""
    import re

    if not SEED.exists():
        pytest.skip(f"the seed is not beside this checkout ({SEED})")
    text = SEED.read_text()
    sample = re.search(
        r"import requests\nimport json\n.*?print\(f\"Profile Picture: .*?\n", text, re.S
    ).group(0)
    video_sample = re.search(
        r"import requests\n\n# Configuration\nSORA_API_URL.*?print\(f\"Video Task ID: .*?\n",
        text,
        re.S,
    ).group(0)
    key = auth["Authorization"].removeprefix("Bearer ")
    with served(api.state.settings) as base:
        code = (
            sample.replace("https://api.apiyi.com", base)
            .replace("YOUR_API_KEY", key)
            .replace(
                "https://mycdn-gg.oss-us-west-1.aliyuncs.com/sora/64ba6b88-8540-4b73-bf05-7bd2e96bebd1.mp4",
                f"{clip_server}/gift_box.mp4",
            )
        )
        exec(compile(code, "seed-002-sample", "exec"), {})
        # Its "Complete Example": a video of @my_character_2024, posted as the sample does
        # (files=payload under a hand-set multipart Content-Type without a boundary).
        named = _create(
            api,
            auth,
            url=f"{clip_server}/gift_box.mp4",
            timestamps="1,3",
            username="my_character_2024",
        )
        assert named.status_code == 200, named.text
        code = video_sample.replace("https://api.apiyi.com", base).replace("YOUR_API_KEY", key)
        exec(compile(code, "seed-002-video-sample", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"Character ID: char_[0-9a-f]{12}\n", printed), printed
    assert "Profile Picture: http" in printed and "Permalink: http" in printed
    video_id = re.search(r"Video Task ID: (job_[0-9a-f]+)\n", printed).group(1)
    video = api.get(f"/v1/videos/{video_id}", headers=auth).json()
    assert (video["size"], video["seconds"], video["status"]) == ("1280x720", "10", "queued")


@pytest.fixture(scope="module")
def box_character(api, auth, clip_server):
    response = _create(
        api, auth, url=f"{clip_server}/gift_box.mp4", timestamps="1,3", username="box_star"
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_video_of_a_mentioned_character(api, auth, box_character, tmp_path):
    from char_pipeline.engine.encode import probe_video, read_frames

    body = {"model": "sora-2", "prompt": "@box_star hopping on a beach", "size": "96x64", "seconds": "1"}  # fmt: skip
    created = api.post("/v1/videos", headers=auth, json=body)
    assert created.status_code == 200, created.text
    video = created.json()
    assert video["object"] == "video" and video["status"] == "queued" and video["progress"] == 0
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2", "96x64", "1")
    assert video["characters"] == [box_character["id"]] and video["completed_at"] is None
    assert_envelope(api.get(f"/v1/videos/{video['id']}/content", headers=auth), 409, "Conflict")
    run_jobs(api, tmp_path, [video["id"]])
    done = api.get(f"/v1/videos/{video['id']}", headers=auth).json()
    assert done["status"] == "completed" and done["progress"] == 100, done
    assert done["completed_at"] >= done["created_at"]
    content = api.get(f"/v1/videos/{video['id']}/content", headers=auth)
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    path = tmp_path / "video.mp4"
    path.write_bytes(content.content)
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (24, 96, 64)  # 1 s at 24 fps
    # "on a beach": the box over scikit-image's gravel photograph, not its plain backdrop.
    assert done["scene"] == "gravel"
    first = next(read_frames(path))
    assert first[:16, :16].std() > 10
    # The same job as /v1/generate/video: it is in the account's jobs too.
    assert api.get(f"/v1/jobs/{video['id']}", headers=auth).json()["status"] == "completed"
    listed = api.get("/v1/videos", headers=auth).json()
    assert listed["object"] == "list" and video["id"] in [v["id"] for v in listed["data"]]
    _, other_key = api.state.jobs.create_key("nosy", ["generate:write"], account="acct_nosy")
    other = {"Authorization": f"Bearer {other_key}"}
    assert_envelope(api.get(f"/v1/videos/{video['id']}", headers=other), 404, "NotFound")
    assert api.get("/v1/videos", headers=other).json()["data"] == []
    deleted = api.delete(f"/v1/videos/{video['id']}", headers=auth).json()
    assert deleted == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert_envelope(api.get(f"/v1/videos/{video['id']}", headers=auth), 404, "NotFound")


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ("a box hopping", "mentions no character"),
        ("@nobody_here dancing", "@nobody_here"),
    ],
)
def test_mentions_must_name_the_accounts_characters(
    api, auth, clip_server, box_character, prompt, fragment
):
    name = "second_star"  # another character of the account
    if api.get(f"/sora/v1/characters/{name}", headers=auth).status_code == 404:
        url = f"{clip_server}/cat.mov"
        assert _create(api, auth, url=url, timestamps="0,1", username=name).status_code == 200
    response = api.post(
        "/v1/videos", headers=auth, json={"prompt": prompt.format(other=name), "seconds": 1}
    )
    assert fragment in assert_envelope(response, 422, "UnprocessableEntity")["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"seconds": "0"}, "seconds"), ({"seconds": "21"}, "seconds"), ({"size": "big"}, "size")],
)
def test_video_fields_are_checked(api, auth, box_character, fields, field):
    body = {"prompt": "@box_star waving", **fields}
    error = assert_envelope(api.post("/v1/videos", headers=auth, json=body), 422, "UnprocessableEntity")  # fmt: skip
    assert error["details"]["field"] == field


def test_the_seeds_multipart_sample_without_a_boundary_is_read(api, auth, box_character):
    """The seed posts ``files=payload`` with a hand-set 'multipart/form-data' content type
    (no boundary): the body is still read, and the video queued."""
    import requests

    prepared = requests.Request(
        "POST",
        "http://testserver/v1/videos",
        files={"model": "sora-2", "prompt": "@box_star spinning", "size": "64x64", "seconds": "1"},
    ).prepare()
    response = api.post(
        "/v1/videos",
        headers={**auth, "Content-Type": "multipart/form-data"},
        content=prepared.body,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued" and response.json()["size"] == "64x64"


def test_two_mentioned_characters_share_the_frame(api, auth, clip_server, box_character, tmp_path):
    """A cast: the box on the left, the cat on the right, over one background, one video."""
    from char_pipeline.engine.encode import read_frames

    name = "second_star"
    if api.get(f"/sora/v1/characters/{name}", headers=auth).status_code == 404:
        url = f"{clip_server}/cat.mov"
        assert _create(api, auth, url=url, timestamps="0,1", username=name).status_code == 200
    body = {"prompt": f"@box_star and @{name} bouncing in space", "size": "192x96", "seconds": "1"}
    video = api.post("/v1/videos", headers=auth, json=body).json()
    assert len(video["characters"]) == 2 and video["scene"] == "deep space", video
    run_jobs(api, tmp_path, [video["id"]])
    done = api.get(f"/v1/videos/{video['id']}", headers=auth).json()
    assert done["status"] == "completed", done
    path = tmp_path / "cast.mp4"
    path.write_bytes(api.get(f"/v1/videos/{video['id']}/content", headers=auth).content)
    frame = next(read_frames(path)).astype(float)
    left, right = frame[:, :96], frame[:, 96:]
    blue = lambda part: (part[..., 2] - part[..., 0]).max()  # noqa: E731  the box is blue
    orange = lambda part: (part[..., 0] - part[..., 2]).max()  # noqa: E731  the cat is orange
    assert blue(left) > 80 and orange(right) > 60
    assert blue(right) < blue(left) and orange(left) < orange(right)


def test_a_character_from_a_video_this_service_rendered(api, auth, clip_server, box_character, tmp_path):  # fmt: skip
    """The seed's announced video_id form: a completed video of the account is the clip."""
    video = api.post("/v1/videos", headers=auth, json={"prompt": "@box_star jumping", "size": "128x128", "seconds": "2"}).json()  # fmt: skip
    early = _create(api, auth, video_id=video["id"], timestamps="0,1")
    assert (
        assert_envelope(early, 422, "UnprocessableEntity")["details"]["rule"] == "video completed"
    )
    run_jobs(api, tmp_path, [video["id"]])
    made = _create(api, auth, video_id=video["id"], timestamps="0.5,1.5", username="rerun_box")
    assert made.status_code == 200, made.text
    source = api.get("/sora/v1/characters/rerun_box", headers=auth).json()["source"]
    assert source["video_id"] == video["id"] and source["video"]["duration_s"] == pytest.approx(2, abs=0.1)  # fmt: skip
    _, other_key = api.state.jobs.create_key("peer", ["reference:read"], account="acct_peer")
    other = {"Authorization": f"Bearer {other_key}"}
    theirs = _create(api, other, video_id=video["id"], timestamps="0,1")
    assert_envelope(theirs, 404, "NotFound")


def test_a_redirect_to_a_private_address_is_refused(api, auth):
    """Every redirect hop passes the outbound rules: loopback is allowed here, 10.0.0.0/8 not."""
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://10.20.30.40/clip.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        error = assert_envelope(_create(api, auth, url=url, timestamps="0,1"), 422, "UnprocessableEntity")  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert error["details"]["rule"] == "outbound" and "10.20.30.40" in error["message"]


def test_a_videos_callback_is_signed_and_delivered(api, box_character, tmp_path):
    """callback_url on /v1/videos: the job's completion webhook, as for /v1/generate/video."""
    from tests.receiver import Receiver, deliver_to

    key, plaintext = api.state.jobs.create_key("hooked", ["generate:write"], account="tests")
    auth = {"Authorization": f"Bearer {plaintext}"}
    with Receiver([key.webhook_secret]) as receiver:
        body = {"prompt": "@box_star waving", "size": "64x64", "seconds": "1", "callback_url": receiver.url}  # fmt: skip
        video = api.post("/v1/videos", headers=auth, json=body).json()
        run_jobs(api, tmp_path, [video["id"]])
        deliver_to(receiver, api.state.jobs)
    (delivery,) = receiver.requests
    assert delivery["verified"] and delivery["body"]["job_id"] == video["id"]
    assert delivery["body"]["status"] == "completed"
