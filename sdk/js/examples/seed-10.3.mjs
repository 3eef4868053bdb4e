import { AiCharacterClient } from "@aicharacter/studio";

const client = new AiCharacterClient({ apiKey: "sk_live_abc123" });

async function run() {
  // 1. Upload
  const { reference_image_id } = await client.referenceImage.upload(
    "/path/to/subject.jpg"
  );

  // 2. Pose control
  const { z_t } = await client.control.pose({
    reference_image_id,
    keypoints: [{ x: 0.5, y: 0.1 }, { x: 0.5, y: 0.25 }]
  });

  // 3. Render frame
  const frame = await client.generate.frame({
    reference_image_id,
    control_type: "pose",
    z_t,
    resolution: "1280x720"
  });

  console.log("Frame URL:", frame.image_url);
}

run();
