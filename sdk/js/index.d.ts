// Types of the Character AI API v1 SDK (index.js). Field names follow the API as served;
// docs/api.md and GET /openapi.json have every field.

export interface ClientOptions {
  apiKey?: string;
  baseUrl?: string;
  maxRetries?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface ComputeOptions {
  gpuType?: "v100" | "t4" | "a100";
  instanceCount?: 1 | 2 | 3 | 4;
  idempotencyKey?: string;
  ifNoneMatch?: string;
  cacheSeconds?: number;
}

export interface Keypoint {
  x: number;
  y: number;
  z?: number;
  confidence?: number;
  name?: string;
  index?: number;
}

export interface ReferenceUploaded {
  reference_image_id: string;
  width: number;
  height: number;
  uploaded_at: string;
}

export interface ReferenceMetadata extends ReferenceUploaded {
  name: string;
  status: "pending" | "processed" | "failed";
  error: ErrorBody | null;
}

export interface ErrorBody {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export interface PoseControlRequest {
  reference_image_id: string;
  keypoints: Keypoint[];
  reference_keypoints?: Keypoint[];
  format?: "json" | "base64";
  frame_index?: number;
}

export interface TextControlRequest {
  reference_image_id: string;
  prompt: string;
  steps: number;
  model?: "clip" | "custom-nlp";
}

export type ControlType = "pose" | "text" | "latent";
export type GeneratorModel = "gan" | "diffusion" | "transformer";

export interface Weights {
  identity_strength?: number;
  temporal_strength?: number;
  perceptual_weight?: number;
  adv_weight?: number;
  pose_smoothness?: number;
  url_ttl?: number;
}

export interface FrameRequest extends Weights {
  reference_image_id: string;
  control_type: ControlType;
  z_t: number[];
  resolution?: string;
  model?: GeneratorModel;
  output_format?: "url" | "base64";
  include_mask?: boolean;
  frame_index?: number;
}

export interface VideoRequest extends Weights {
  reference_image_id: string;
  control_type: ControlType;
  z_sequence: number[][];
  format?: "mp4" | "gif";
  resolution?: string;
  fps?: number;
  model?: GeneratorModel;
  callback_url?: string;
  include_mask?: boolean;
  async?: boolean;
}

export interface CameraPose {
  position: [number, number, number];
  look_at?: [number, number, number];
  up?: [number, number, number];
  fov?: number;
}

export interface NerfRequest {
  reference_image_id: string;
  camera_trajectory: CameraPose[];
  resolution?: string;
  output_format?: "nerf_model" | "video";
  fps?: number;
  url_ttl?: number;
  async?: boolean;
  callback_url?: string;
}

export interface BatchRequest {
  tasks: Omit<VideoRequest, "async">[];
  async?: boolean;
  callback_url?: string;
}

export interface JobAccepted {
  job_id: string;
  status_url: string;
}

export type JobStatus = "pending" | "processing" | "completed" | "failed" | "cancelled";

export interface Job {
  job_id: string;
  kind?: "video" | "nerf" | "batch";
  status: JobStatus;
  progress: number;
  message: string | null;
  created_at: string;
  updated_at: string;
  result?: Record<string, unknown>;
  error?: ErrorBody;
  batch_id?: string;
  tasks?: Array<Record<string, unknown>>;
  [field: string]: unknown;
}

export interface JobPage {
  data: Job[];
  has_more: boolean;
  next_cursor: string | null;
}

export interface JobFilters {
  status?: JobStatus;
  kind?: "video" | "nerf" | "batch";
  batch_id?: string;
  created_after?: string;
  created_before?: string;
  cursor?: string;
  limit?: number;
}

export type Answer = Record<string, any>;

export declare class ApiError extends Error {
  status: number;
  code: string;
  details: Record<string, unknown>;
  /** Seconds, from Retry-After, when the API sent one. */
  retryAfter: number | null;
}

export declare class WebhookVerificationError extends Error {}

export declare class AiCharacterClient {
  constructor(options?: ClientOptions);
  apiKey: string;
  baseUrl: string;
  referenceImage: {
    upload(
      input: string | URL | Blob | ArrayBuffer | ArrayBufferView,
      options?: { name?: string; keypoints?: Keypoint[] },
    ): Promise<ReferenceUploaded>;
    get(referenceImageId: string): Promise<ReferenceMetadata>;
    mask(referenceImageId: string, options?: { format?: "base64" | "png" }): Promise<Answer>;
    features(referenceImageId: string, options?: { model?: "cnn" | "vit" }): Promise<Answer>;
  };
  control: {
    pose(body: PoseControlRequest): Promise<{ z_t: number[] } & Answer>;
    text(body: TextControlRequest): Promise<{ z_sequence: number[][] } & Answer>;
    latent(query: { length: number; seed?: number; distribution?: "gaussian" | "uniform" }): Promise<{ z_sequence: number[][] } & Answer>;
  };
  generate: {
    frame(body: FrameRequest, options?: ComputeOptions): Promise<Answer>;
    video(body: VideoRequest, options?: ComputeOptions): Promise<Answer | JobAccepted>;
    nerf(body: NerfRequest, options?: ComputeOptions): Promise<Answer | JobAccepted>;
    batch(body: BatchRequest, options?: ComputeOptions): Promise<Answer>;
  };
  jobs: {
    get(jobId: string, options?: { wait?: number }): Promise<Job>;
    list(filters?: JobFilters): Promise<JobPage>;
    iterate(filters?: JobFilters): AsyncGenerator<Job>;
    cancel(jobId: string): Promise<Job>;
    wait(jobId: string, options?: { timeoutMs?: number }): Promise<Job>;
  };
  request(
    method: string,
    path: string,
    options?: { json?: unknown; body?: BodyInit; headers?: Record<string, string>; query?: Record<string, unknown>; timeoutMs?: number },
  ): Promise<Answer>;
}

export declare function verifyWebhook(
  secrets: string | string[],
  headers: Headers | Record<string, string>,
  body: string | Uint8Array,
  options?: { toleranceSeconds?: number; now?: number },
): Promise<Answer>;

export declare const webhooks: { verify: typeof verifyWebhook };
export default AiCharacterClient;
