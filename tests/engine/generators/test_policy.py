"""Per-GPU-type policies: the documented dtype, memory strategy and limits; no GPU → 503."""

from __future__ import annotations

import pytest
import torch

from char_pipeline.engine.errors import ResourceExhaustedError, ResourceUnavailableError
from char_pipeline.engine.generators.policy import POLICIES, check_limits, plan_generation


@pytest.mark.parametrize(
    ("gpu", "dtype", "memory"),
    [("v100", "float16", "resident"), ("t4", "float16", "model_cpu_offload"), ("a100", "bfloat16", "resident")],
)  # fmt: skip
def test_each_type_has_its_documented_dtype_and_memory_strategy(gpu, dtype, memory):
    policy = POLICIES[gpu]
    assert (policy.dtype, policy.memory) == (dtype, memory)
    assert policy.vae_tiling == (gpu == "t4")


def test_without_a_gpu_the_generative_modes_answer_resource_unavailable():
    with pytest.raises(ResourceUnavailableError) as error:
        plan_generation("t4", allow_cpu=False, device="cpu")
    assert error.value.http_status == 503 and "CHAR_ALLOW_CPU_GENERATION" in error.value.message


def test_cpu_generation_when_allowed_says_so_and_shrinks_the_limits():
    plan = plan_generation("a100", allow_cpu=True, device="cpu")
    assert plan.device == "cpu" and plan.dtype == "float32" and plan.policy.memory == "resident"
    assert plan.policy.gpu_type == "a100" and "CHAR_ALLOW_CPU_GENERATION" in plan.notes[0]
    with pytest.raises(ResourceExhaustedError):
        check_limits(plan, "diffusion", 640, 480, 8)
    with pytest.raises(ResourceExhaustedError):
        check_limits(plan, "diffusion", 256, 256, 49)
    check_limits(plan, "diffusion", 512, 512, 48)


def test_the_shared_types_refuse_what_only_an_a100_takes(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    t4 = plan_generation("t4", allow_cpu=False, device="cuda")
    a100 = plan_generation("a100", allow_cpu=False, device="cuda")
    assert t4.dtype == "float16" and a100.dtype == "bfloat16"
    with pytest.raises(ResourceExhaustedError, match="a100"):
        check_limits(t4, "diffusion", 1280, 720, 16)
    check_limits(a100, "diffusion", 1280, 720, 16)
    with pytest.raises(ResourceExhaustedError, match="64 frames"):
        check_limits(t4, "diffusion", 512, 512, 65)


def test_an_a100_policy_on_a_gpu_without_bfloat16_runs_float16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    plan = plan_generation("a100", allow_cpu=False, device="cuda")
    assert plan.dtype == "float16" and "bfloat16" in plan.notes[0]
