from char_pipeline.engine.controls import latent_sequence
from char_pipeline.engine.encode import read_frames
from char_pipeline.engine.pipeline import prepare_character, render_video


def test_five_line_script_renders_a_gif_and_an_mp4(image_paths, tmp_path):
    character = prepare_character(image_paths["present"].read_bytes())
    z_sequence = latent_sequence(6, seed=5)
    mp4 = render_video(character, z_sequence, tmp_path / "a.mp4", resolution="80x64", fps=12)
    gif = render_video(character, z_sequence, tmp_path / "a.gif", resolution="80x64", fps=12)
    assert (mp4.frames, mp4.codec, gif.frames, gif.codec) == (6, "h264", 6, "gif")
    # Same inputs, same seed ⇒ the same encoded frames.
    again = render_video(character, z_sequence, tmp_path / "b.mp4", resolution="80x64", fps=12)
    assert again.frames == 6
    for a, b in zip(read_frames(tmp_path / "a.mp4"), read_frames(tmp_path / "b.mp4"), strict=True):
        assert (a == b).all()


def test_the_same_request_gives_the_same_bytes_every_time(image_paths, tmp_path):
    """From the image bytes to the MP4 bytes, three times over, each from scratch (decode,
    segmentation, rig, scene, encoder): one file. The encoder runs one thread for this."""
    import hashlib
    import subprocess
    import sys

    script = (
        "import sys, hashlib; from pathlib import Path\n"
        "from char_pipeline.engine.controls import latent_sequence\n"
        "from char_pipeline.engine.pipeline import prepare_character, render_video\n"
        "character = prepare_character(Path(sys.argv[1]).read_bytes())\n"
        "render_video(character, latent_sequence(24, seed=11), sys.argv[2], resolution='192x192')\n"
    )
    digests = set()
    for run in range(3):
        out = tmp_path / f"run{run}.mp4"
        if run == 0:  # one run in a fresh interpreter: nothing carried over in memory
            subprocess.run(
                [sys.executable, "-c", script, str(image_paths["astronaut"]), str(out)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        else:
            character = prepare_character(image_paths["astronaut"].read_bytes())
            render_video(character, latent_sequence(24, seed=11), out, resolution="192x192")
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1
