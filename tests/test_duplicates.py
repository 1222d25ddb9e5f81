"""Near-duplicate photos and videos, from the stored vectors."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from media_factory import Shot, make_video

from mediafind import duplicates
from mediafind.db import FileFacts, NewSegment, Part, Store
from mediafind.duplicates import find_duplicates

SCENES = [
    Shot(3.0, (220, 30, 30), (250, 250, 250)),
    Shot(3.0, (30, 200, 60), (10, 10, 10)),
    Shot(3.0, (30, 60, 220), (250, 220, 40)),
]
FADE = Shot(0.6, (0, 0, 0), (0, 0, 0))


def groups(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    result = cli("duplicates", "--threshold", "0.98", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_resized_and_reencoded_photos_group(cli, tmp_path: Path):
    from PIL import Image

    root = tmp_path / "photos"
    original = draw_photo(
        root / "original.jpg", COLORS["orange"], size=(320, 240), stripe=COLORS["blue"]
    )
    Image.open(original).resize((160, 120)).save(root / "small.png")
    Image.open(original).save(root / "recompressed.jpg", quality=40)
    draw_photo(root / "other.jpg", COLORS["green"], size=(320, 240), stripe=COLORS["white"])
    cli("index", root)
    found = groups(cli)
    assert [sorted(Path(p).name for p in g["paths"]) for g in found] == [
        ["original.jpg", "recompressed.jpg", "small.png"]
    ]
    assert found[0]["kind"] == "image" and found[0]["similarity"] >= 0.98


def test_reencoded_and_trimmed_videos_group_but_a_shared_fade_does_not(cli, tmp_path: Path):
    root = tmp_path / "videos"
    make_video(root / "holiday.mp4", [FADE, *SCENES], size=(160, 96))
    make_video(root / "holiday small.mkv", [FADE, *SCENES], size=(96, 64), codec="libvpx-vp9")
    make_video(root / "holiday trimmed.mp4", SCENES[1:], size=(160, 96))
    other = [Shot(3.0, (250, 250, 250), (90, 20, 120)), Shot(3.0, (120, 60, 10), (0, 90, 90))]
    make_video(root / "same fade, other film.mp4", [FADE, *other], size=(160, 96))
    cli("index", root, "--no-audio")
    found = groups(cli, "--type", "video")
    assert [sorted(Path(p).name for p in g["paths"]) for g in found] == [
        ["holiday small.mkv", "holiday trimmed.mp4", "holiday.mp4"]
    ]


def test_human_output_and_exit_codes(cli, tmp_path: Path):
    root = tmp_path / "two"
    draw_photo(root / "a.jpg", COLORS["red"])
    draw_photo(root / "b.jpg", COLORS["blue"], stripe=COLORS["yellow"])
    cli("index", root)
    none = cli("duplicates", "--threshold", "0.999")
    assert none.exit_code == 1 and none.stdout == ""
    (root / "a copy.jpg").write_bytes((root / "a.jpg").read_bytes())
    cli("index", root)
    result = cli("duplicates", "--threshold", "0.99")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# 2 images alike at")
    assert sorted(Path(p).name for p in lines[1:]) == ["a copy.jpg", "a.jpg"]
    assert cli("duplicates", "--threshold", "1.5").exit_code == 2


# Grouping checked against a brute-force reference on synthetic vectors: the
# groups are the connected components of the graph "cosine >= threshold", and
# a group's similarity is the lowest cosine among its members' matching pairs.


def clustered(seed: int, count: int, clusters: int, spread: float, dim: int = 16) -> np.ndarray:
    """Unit vectors around `clusters` random centres; a larger spread makes looser groups."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((count, dim)) * (spread / np.sqrt(dim))
    vectors = centres[rng.integers(0, clusters, count)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def clear_threshold(similarity: np.ndarray, wanted: float) -> float:
    """A threshold near `wanted` that no pair is within float32 noise of."""
    threshold = wanted
    while np.any(np.abs(similarity - threshold) < 1e-5):
        threshold += 3e-5
    return threshold


def reference_groups(
    paths: list[str], similarity: np.ndarray, threshold: float
) -> list[tuple[list[str], float]]:
    """Connected components of the matching pairs by depth-first search, largest first."""
    linked = similarity >= threshold
    np.fill_diagonal(linked, False)
    seen = np.zeros(len(paths), dtype=bool)
    found = []
    for start in range(len(paths)):
        if seen[start]:
            continue
        seen[start] = True
        members, stack = [], [start]
        while stack:
            item = stack.pop()
            members.append(item)
            for other in np.flatnonzero(linked[item] & ~seen):
                seen[other] = True
                stack.append(int(other))
        if len(members) > 1:
            block = np.ix_(members, members)
            weakest = min(1.0, float(similarity[block][linked[block]].min()))
            found.append((sorted(paths[i] for i in members), weakest))
    found.sort(key=lambda group: (-len(group[0]), group[0]))
    return found


def write_photos(db: Path, vectors: np.ndarray) -> list[str]:
    """An index of one-segment photos with these vectors, written as `index` writes them."""
    paths = [f"/photos/{number:04d}.jpg" for number in range(len(vectors))]
    with Store.open(db, create=True) as store:
        space = store.create_space("visual", "test", "test-model", vectors.shape[1], active=True)
        segment = [NewSegment("visual", None, None)]
        for number, (path, vector) in enumerate(zip(paths, vectors, strict=True)):
            facts = FileFacts(path, "image", 1000, 0, f"hash{number}", "ok")
            store.write_file(facts, [Part(space, segment, vector[None])])
    return paths


def found_groups(db: Path, threshold: float, kinds: tuple[str, ...] = ()) -> list:
    with Store.open(db, create=False) as store:
        groups = find_duplicates(store, threshold=threshold, kinds=kinds)
    return [(group.paths, group.similarity) for group in groups]


def assert_same_groups(found: list, expected: list) -> None:
    assert [paths for paths, _ in found] == [paths for paths, _ in expected]
    for (_, similarity), (_, weakest) in zip(found, expected, strict=True):
        assert similarity == pytest.approx(weakest, abs=1e-6)


@pytest.mark.parametrize(
    ("seed", "clusters", "spread", "wanted"),
    [
        (1, 40, 0.25, 0.95),  # small, tight groups
        (2, 12, 0.6, 0.9),  # loose groups that hold together through chains
        (3, 1, 0.05, 0.95),  # every photo like every other
        (4, 300, 0.3, 0.97),  # mostly single photos
    ],
)
@pytest.mark.parametrize("small_tiles", [False, True])
def test_photo_groups_are_the_connected_components_of_matching_pairs(
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    clusters: int,
    spread: float,
    wanted: float,
    small_tiles: bool,
):
    if small_tiles:  # tiles of 64 photos, the smallest, so that groups span many tiles
        monkeypatch.setattr(duplicates, "_TILE_BYTES", 1)
    vectors = clustered(seed, 300, clusters, spread)
    similarity = vectors @ vectors.T
    threshold = clear_threshold(similarity, wanted)
    paths = write_photos(db_path, vectors)
    expected = reference_groups(paths, similarity, threshold)
    assert expected, "the data should make some groups"
    assert_same_groups(found_groups(db_path, threshold), expected)


def test_a_chain_of_slowly_drifting_photos_is_one_group(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Photos along an arc, each matching only its neighbours: the group holds
    # through 199 links, met in shuffled order across many tiles.
    monkeypatch.setattr(duplicates, "_TILE_BYTES", 1)
    step = np.pi / 300
    angles = np.random.default_rng(5).permutation(200) * step
    vectors = np.zeros((230, 8), dtype=np.float32)
    vectors[:200, 0], vectors[:200, 1] = np.cos(angles), np.sin(angles)
    vectors[200:] = clustered(6, 30, 30, 0.1, dim=8)
    paths = write_photos(db_path, vectors)
    threshold = float(np.cos(1.5 * step))
    found = found_groups(db_path, threshold)
    assert_same_groups(found, reference_groups(paths, vectors @ vectors.T, threshold))
    assert len(found) == 1 and len(found[0][0]) == 200
    assert found[0][1] == pytest.approx(np.cos(step), abs=1e-6)


def test_similarity_is_the_weakest_direct_match_not_the_weakest_needed():
    # a-b 0.99, b-c 0.97, a-c 0.96: all three pairs match at 0.95, and the group
    # reports 0.96 although a-b and b-c alone hold it together. At 0.965, a-c
    # no longer matches and the group reports 0.97.
    gram = np.array([[1.0, 0.99, 0.96], [0.99, 1.0, 0.97], [0.96, 0.97, 1.0]])
    vectors = np.linalg.cholesky(gram).astype(np.float32)
    paths = ["a.jpg", "b.jpg", "c.jpg"]
    for threshold, weakest in ((0.95, 0.96), (0.965, 0.97)):
        [group] = duplicates._photo_groups(paths, vectors, threshold)
        assert group.paths == paths
        assert group.similarity == pytest.approx(weakest, abs=1e-6)


def test_memory_stays_within_the_tile_budget_when_every_photo_matches(
    monkeypatch: pytest.MonkeyPatch,
):
    # 3000 photos, every pair of them matching (4.5 million pairs): the work
    # must hold tiles of the budget, never the matching pairs (before: 120 MB).
    budget = 256 * 1024
    monkeypatch.setattr(duplicates, "_TILE_BYTES", budget)
    vectors = clustered(7, 3000, 1, 0.05, dim=32)
    paths = [f"/photos/{number:04d}.jpg" for number in range(3000)]
    tracemalloc.start()
    try:
        groups = duplicates._photo_groups(paths, vectors, 0.95)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [len(group.paths) for group in groups] == [3000]
    assert groups[0].similarity == pytest.approx((vectors @ vectors.T).min(), abs=1e-6)
    assert peak < 4 * budget


def video_similarity(videos: list[tuple[str, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Every pair of videos compared directly: the shorter one's moments, weighted by
    length, each matched in the longer; 0 for pairs whose mean vectors agree less
    than 0.8, which are not compared."""
    count = len(videos)
    similarity = np.zeros((count, count))
    for i in range(count):
        for j in range(i + 1, count):
            (_, a, a_weights), (_, b, b_weights) = videos[i], videos[j]
            mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
            if mean_a @ mean_b < 0.8 * np.linalg.norm(mean_a) * np.linalg.norm(mean_b):
                continue
            if a_weights.sum() > b_weights.sum():
                a, a_weights, b = b, b_weights, a
            best = (a @ b.T).max(axis=1)
            similarity[i, j] = similarity[j, i] = (best * a_weights).sum() / a_weights.sum()
    return similarity


def test_video_groups_match_a_pairwise_reference(db_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(duplicates, "_TILE_BYTES", 1)  # tiles of 64 videos
    rng = np.random.default_rng(8)
    scenes = clustered(9, 12, 12, 0.0)
    videos = []
    with Store.open(db_path, create=True) as store:
        space = store.create_space("visual", "test", "test-model", 16, active=True)
        for number in range(150):
            # Three to six shots of one of a few films, some trimmed, all re-encoded;
            # a film's first shots are the end of another's.
            first = int(rng.integers(0, 4)) * 3
            shots = scenes[first : first + int(rng.integers(3, 7))]
            noise = rng.standard_normal(shots.shape).astype(np.float32) * np.float32(0.15 / 4)
            moments = shots + noise
            moments /= np.linalg.norm(moments, axis=1, keepdims=True)
            lengths = rng.uniform(1.0, 8.0, len(moments))
            starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
            path = f"/videos/{number:03d}.mp4"
            facts = FileFacts(path, "video", 1000, 0, f"hash{number}", "ok")
            segments = [
                NewSegment("visual", s, e) for s, e in zip(starts, starts + lengths, strict=True)
            ]
            store.write_file(facts, [Part(space, segments, moments)])
            videos.append((path, moments, lengths))
    similarity = video_similarity(videos)
    threshold = clear_threshold(similarity, 0.97)
    expected = reference_groups([path for path, _, _ in videos], similarity, threshold)
    assert len(expected) > 1
    assert_same_groups(found_groups(db_path, threshold, ("video",)), expected)
