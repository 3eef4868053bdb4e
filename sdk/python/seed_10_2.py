from aicharacter import Client

client = Client(api_key="sk_live_abc123")

# 1. Upload image
ref = client.upload_reference_image("/path/to/subject.jpg")

# 2. Generate text control
z_seq = client.control.text(
    reference_image_id=ref.id,
    prompt="A cat playing piano",
    steps=8
)

# 3. Generate video synchronously
video = client.generate.video(
    reference_image_id=ref.id,
    control_type="text",
    z_sequence=z_seq,
    format="mp4",
    resolution="720x720",
    fps=24
)

print("Download at:", video.video_url)
