"""Tiny, randomly initialised generator components, saved in the model store's layout.

Built inside the tests (and the generator bench's CPU regression figure), never shipped as
models: they exercise the real loading and sampling code of the diffusion and transformer
backends (from_pretrained, load_ip_adapter, the pipelines' __call__) in seconds on a CPU.
Sizes follow diffusers' own fast tests. Tokenizers are built offline from a byte vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CROSS_ATTENTION = 8
BLOCKS = (8, 8)


def _clip_tokenizer():
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(characters)}
    vocab.update({c + "</w>": len(characters) + i for i, c in enumerate(characters)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _word_tokenizer():
    """A T5-like tokenizer (word level, with </s> and <pad>) for the tiny Wan text encoder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>", *"abcdefghijklmnopqrstuvwxyz0123456789"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )


def _clip_text_encoder(hidden: int, **extra):
    """A tiny CLIP text tower over the byte vocabulary of ``_clip_tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
            hidden_size=hidden,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=520,
            max_position_embeddings=77,
            **extra,
        )
    )


def _t5_encoder(model_class, config_class):
    """A tiny T5-family encoder (T5 for FLUX, UMT5 for Wan) over ``_word_tokenizer``."""
    return model_class(
        config_class(
            vocab_size=64,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    )


def build_sd15(folder: Path) -> None:
    """A Stable-Diffusion-1.5-shaped base (unet, vae, text encoder, tokenizer, scheduler)."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=BLOCKS,
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CROSS_ATTENTION,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=BLOCKS,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = _clip_text_encoder(CROSS_ATTENTION)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        steps_offset=1,
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)


def build_controlnet(folder: Path) -> None:
    from diffusers import ControlNetModel

    torch.manual_seed(1)
    controlnet = ControlNetModel(
        block_out_channels=BLOCKS,
        layers_per_block=2,
        in_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=CROSS_ATTENTION,
        conditioning_embedding_out_channels=(8, 8),
        norm_num_groups=1,
    )
    _unzero(controlnet, ("controlnet_down_blocks", "controlnet_mid_block", "conv_out"))
    controlnet.save_pretrained(folder)


def _unzero(model: torch.nn.Module, names: tuple[str, ...]) -> None:
    """ControlNet and motion modules start with zero-initialised output layers (no effect
    until trained); random ones here, so a test can see that the conditioning is wired."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(part in name for part in names):
                parameter.normal_(0.0, 1.0)


def build_motion_adapter(folder: Path) -> None:
    from diffusers import MotionAdapter

    torch.manual_seed(2)
    adapter = MotionAdapter(
        block_out_channels=BLOCKS,
        motion_layers_per_block=2,
        motion_norm_num_groups=2,
        motion_num_attention_heads=4,
    )
    _unzero(adapter, ("proj_out",))
    adapter.save_pretrained(folder)


def build_ip_adapter(folder: Path, *, image_embeds: int = 8, tokens: int = 4) -> None:
    """An IP-Adapter in h94/IP-Adapter's layout: models/ip-adapter_sd15.safetensors (image
    projection + to_k_ip/to_v_ip per cross-attention, numbered as diffusers' loader reads
    them) and models/image_encoder (a CLIP vision model with projection)."""
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(3)
    models = folder / "models"
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            projection_dim=image_embeds,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=24,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(models / "image_encoder")
    # The cross-attention layers of the UNet the adapter will sit in (the motion UNet's
    # order, which is the 2D UNet's order with the motion modules skipped).
    unet = UNetMotionModel.from_unet2d(
        UNet2DConditionModel(
            block_out_channels=BLOCKS,
            layers_per_block=2,
            sample_size=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=CROSS_ATTENTION,
            norm_num_groups=2,
        ),
        MotionAdapter(
            block_out_channels=BLOCKS, motion_layers_per_block=2, motion_norm_num_groups=2
        ),
    )
    state = {
        "image_proj.proj.weight": torch.randn(tokens * CROSS_ATTENTION, image_embeds) * 0.2,
        "image_proj.proj.bias": torch.zeros(tokens * CROSS_ATTENTION),
        "image_proj.norm.weight": torch.ones(CROSS_ATTENTION),
        "image_proj.norm.bias": torch.zeros(CROSS_ATTENTION),
    }
    key = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor") or "motion_modules" in name:
            continue
        attention = unet.get_submodule(name.rsplit(".processor", 1)[0])
        hidden = attention.to_k.weight.shape[0]
        for projection in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{key}.{projection}.weight"] = (
                torch.randn(hidden, CROSS_ATTENTION) * 0.5
            )
        key += 2
    save_file(state, str(models / "ip-adapter_sd15.safetensors"))


def build_wan_vace(folder: Path) -> None:
    """A Wan-2.1-VACE-shaped pipeline folder (transformer, VAE, T5 encoder, tokenizer)."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(4)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )
    # Random control projections are tiny next to the main path; a test must see them act.
    _unzero(transformer, ("vace_blocks.0.proj_out", "vace_blocks.1.proj_out"))
    text_encoder = _t5_encoder(UMT5EncoderModel, UMT5Config)
    WanVACEPipeline(
        tokenizer=_word_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    ).save_pretrained(folder)


def build_flux(folder: Path) -> None:
    """A FLUX-shaped pipeline folder (one double- and one single-stream block)."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(5)
    FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKL(  # 8× down, as FLUX's: a 256² image is 16×16 packed tokens
            sample_size=32,
            in_channels=3,
            out_channels=3,
            block_out_channels=(4, 4, 4, 4),
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            layers_per_block=1,
            latent_channels=1,
            norm_num_groups=1,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        ),
        text_encoder=_clip_text_encoder(32, projection_dim=32),
        tokenizer=_clip_tokenizer(),
        text_encoder_2=_t5_encoder(T5EncoderModel, T5Config),
        tokenizer_2=_word_tokenizer(),
        transformer=FluxTransformer2DModel(
            patch_size=1,
            in_channels=4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=[4, 4, 8],
        ),
    ).save_pretrained(folder)


def build_siglip(folder: Path) -> None:
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(6)
    SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=24,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)


def build_subject_adapter(folder: Path) -> None:
    """Random weights of engine/generators/instant_character.SubjectAdapter (its own layout)."""
    from safetensors.torch import save_file

    from char_pipeline.engine.generators.instant_character import ADAPTER_FILE, _adapter_class

    torch.manual_seed(7)
    config = {"feature_dim": 16, "inner_dim": 32, "blocks": 1, "tokens": 4, "heads": 2}
    adapter = _adapter_class()(**config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(adapter.state_dict(), str(folder / ADAPTER_FILE))


def build_store(root: Path) -> Path:
    """Every generator entry of the registry, tiny, under ``root`` (the model store)."""
    build_sd15(root / "sd15")
    build_controlnet(root / "controlnet-openpose-sd15")
    build_motion_adapter(root / "animatediff-motion-adapter")
    build_ip_adapter(root / "ip-adapter-sd15")
    build_wan_vace(root / "wan2.1-vace-1.3b")
    build_flux(root / "flux1-dev")
    build_siglip(root / "siglip-so400m")
    build_subject_adapter(root / "instant-character-adapter")
    (root / "TINY_TEST_MODELS.json").write_text(json.dumps({"random": True}))
    return root
