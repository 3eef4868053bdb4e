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
