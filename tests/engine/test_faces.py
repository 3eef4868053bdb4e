"""The face check sees a face covered by a limb; a subject without a face is not checked."""

import cv2
import numpy as np

from char_pipeline.engine.faces import face_visibility


def test_a_covered_face_is_seen_missing(astronaut):
    reference, _ = astronaut
    frame = reference.rgb.copy()
    covered = frame.copy()
    # The helmet (bottom right of the photo) lifted over her face, as the old "wave" did.
    helmet = np.ascontiguousarray(frame[330:512, 300:512])
    covered[40:222, 150:362] = helmet
    tilted = cv2.warpAffine(
        frame,
        cv2.getRotationMatrix2D((256, 256), 12, 1.0),
        (512, 512),
        borderMode=cv2.BORDER_REFLECT,
    )
    visibility = face_visibility(reference.rgb, [frame, tilted, covered])
    assert visibility.applies
    assert visibility.frame_scores[0] >= 0.5 and visibility.frame_scores[1] >= 0.5  # a nod is fine
    assert visibility.frames_without_face == 1


def test_no_face_nothing_to_check(present):
    reference, _ = present
    visibility = face_visibility(reference.rgb, [reference.rgb])
    assert not visibility.applies and visibility.frames_without_face == 0
