import importlib.util

import numpy as np
import pytest

from char_pipeline.engine.controls import JOINT_INDEX
from char_pipeline.engine.errors import KeypointError
from char_pipeline.engine.rig import Rig, build_rig

HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None


def _rig(pair, keypoints=None) -> Rig:
    reference, mask = pair
    return build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, keypoints)


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe is not installed (make setup installs it)")
def test_a_person_is_rigged_by_the_pose_model(astronaut):
    rig = _rig(astronaut)
    assert rig.kind == "pose-model"
    _, mask = astronaut
    for name in ("nose", "left_shoulder", "right_shoulder", "left_elbow"):
        x, y = rig.rest.joints[JOINT_INDEX[name]]
        assert mask.binary[int(y), int(x)], name
    # The person faces the camera: their left shoulder is on the image's right.
    assert (
        rig.rest.joints[JOINT_INDEX["left_shoulder"], 0]
        > rig.rest.joints[JOINT_INDEX["right_shoulder"], 0]
    )


@pytest.mark.parametrize("name", ["present", "chelsea"])
def test_other_shapes_get_a_medial_axis_rig(request, name):
    pair = request.getfixturevalue(name)
    rig = _rig(pair)
    assert rig.kind == "skeleton-graph"
    assert len(rig.graph["end_points"]) >= 2 and rig.graph["root"] is not None
    _, mask = pair
    inside = [mask.binary[int(y), int(x)] for x, y in rig.rest.joints]
    assert np.mean(inside) >= 0.8  # bones run inside the shape
    data = Rig.from_json(rig.to_json())
    assert data.kind == rig.kind and np.allclose(data.rest.joints, rig.rest.joints)


def test_client_keypoints_override_detection(present):
    keypoints = [
        {"name": "nose", "x": 0.5, "y": 0.2},
        {"name": "left_wrist", "x": 0.8, "y": 0.5},
        {"index": 10, "x": 0.2, "y": 0.5},
    ]
    rig = _rig(present, keypoints)
    reference, _ = present
    assert rig.kind == "client"
    assert rig.rest.joints[JOINT_INDEX["left_wrist"]] == pytest.approx(
        [0.8 * reference.width, 0.5 * reference.height]
    )
    assert rig.rest.joints[JOINT_INDEX["right_wrist"]] == pytest.approx(
        [0.2 * reference.width, 0.5 * reference.height]
    )
    for bad in (
        [{"name": "nose", "x": 0.5, "y": 0.2}],
        [{"name": "nose", "x": float("nan"), "y": 0.2}, {"name": "left_hip", "x": 0.5, "y": 0.6}],
        [{"name": "tail", "x": 0.5, "y": 0.2}, {"name": "left_hip", "x": 0.5, "y": 0.6}],
        [{"name": "nose", "x": 1.5, "y": 0.2}, {"name": "left_hip", "x": 0.5, "y": 0.6}],
    ):
        with pytest.raises(KeypointError):
            _rig(present, bad)
