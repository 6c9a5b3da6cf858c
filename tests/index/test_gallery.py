"""Gallery as derived state of a real SQLite template store: rebuild, catch-up, tenants,
exact/ANN switching, snapshots and the follower thread."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bioverify.errors import Unavailable
from bioverify.index.faiss_ann import FastScanIndex
from bioverify.index.gallery import Gallery, GalleryFollower
from bioverify.scoring import cosine_similarity
from bioverify.store.ports import TemplateStore, TemplateWrite
from bioverify.store.sqlite_store import SqliteTemplateStore
from tests.conftest import files_holding, wait_until

DIM = 32
F32 = npt.NDArray[np.float32]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTemplateStore]:
    s = SqliteTemplateStore(tmp_path / "templates.sqlite3")
    yield s
    s.close()


class People:
    """Seeded identities: ``probe(name)`` is a fresh genuine sample of that identity."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._centres: dict[str, F32] = {}

    def centre(self, name: str) -> F32:
        if name not in self._centres:
            v = self._rng.normal(size=DIM)
            self._centres[name] = (v / np.linalg.norm(v)).astype(np.float32)
        return self._centres[name]

    def probe(self, name: str, noise: float = 0.3) -> F32:
        v = self.centre(name) + noise / np.sqrt(DIM) * self._rng.normal(size=DIM)
        vector: F32 = (v / np.linalg.norm(v)).astype(np.float32)
        return vector


def enroll(
    store: TemplateStore,
    people: People,
    tenant: str,
    name: str,
    *,
    identity: str | None = None,
    modality: str = "face",
    model: str = "m1",
) -> None:
    who = identity or name
    store.save(
        TemplateWrite(
            tenant=tenant,
            subject_id=name,
            modality=modality,
            model=model,
            new_samples=np.stack([people.probe(who), people.probe(who)]),
            metadata={},
            replace=True,
        )
    )


def top(gallery: Gallery, tenant: str, probe: F32) -> str | None:
    hits = gallery.search(tenant, probe, 1)
    return hits[0][0] if hits else None


def test_rebuild_searches_one_tenant_only(store: SqliteTemplateStore) -> None:
    people = People(1)
    for name in ("ann", "bob", "cyd"):
        enroll(store, people, "acme", name)
    # Same subject ids in another tenant, but other people's faces.
    enroll(store, people, "umbrella", "ann", identity="ann-umbrella")
    enroll(store, people, "umbrella", "dan")
    enroll(store, people, "acme", "voice-only", modality="voice")
    enroll(store, people, "acme", "old-model", model="m0")
    gallery = Gallery("face", "m1", DIM)
    gallery.rebuild(store)
    assert gallery.seq == store.latest_seq()
    assert gallery.describe() == {"acme": ("exact", 3), "umbrella": ("exact", 2)}
    hits = gallery.search("acme", people.probe("bob"), 10)
    assert hits[0][0] == "bob" and {s for s, _ in hits} == {"ann", "bob", "cyd"}
    assert hits[0][1] > 0.7 > hits[1][1]
    # Searching acme with dan's face never reaches umbrella's dan.
    assert "dan" not in {s for s, _ in gallery.search("acme", people.probe("dan"), 10)}
    assert top(gallery, "umbrella", people.probe("ann-umbrella")) == "ann"
    assert gallery.search("nobody", people.probe("ann"), 3) == []


def test_catch_up_applies_enrolments_replacements_and_deletions(
    store: SqliteTemplateStore,
) -> None:
    people = People(2)
    enroll(store, people, "t", "ann")
    enroll(store, people, "t", "bob")
    gallery = Gallery("face", "m1", DIM)
    gallery.rebuild(store)
    enroll(store, people, "t", "cyd")
    enroll(store, people, "t2", "eve")
    store.delete_subject("t", "bob")
    enroll(store, people, "t", "ann", identity="ann-new-face")  # re-enrolled, replace=True
    enroll(store, people, "t", "flo")
    store.delete_subject("t", "flo")  # enrolled and deleted between two catch-ups
    enroll(store, people, "t", "gus", model="m0")  # another model: not this gallery's
    assert gallery.catch_up(store) == 7  # every change is read, whatever its modality or model
    assert gallery.seq == store.latest_seq()
    assert gallery.catch_up(store) == 0
    assert top(gallery, "t", people.probe("cyd")) == "cyd"
    assert top(gallery, "t2", people.probe("eve")) == "eve"
    assert top(gallery, "t", people.probe("ann-new-face")) == "ann"
    subjects = {s for s, _ in gallery.search("t", people.probe("bob"), 10)}
    assert subjects == {"ann", "cyd"}
    # A subject re-enrolled with another model leaves this gallery.
    enroll(store, people, "t", "cyd", model="m2")
    gallery.catch_up(store)
    assert {s for s, _ in gallery.search("t", people.probe("cyd"), 10)} == {"ann"}
    store.delete_subject("t", "ann")
    gallery.catch_up(store)
    assert gallery.tenants() == ["t2"]


def test_partitions_switch_between_exact_and_ann(store: SqliteTemplateStore) -> None:
    people = People(3)
    names = [f"s{i:03d}" for i in range(60)]
    for name in names[:30]:
        enroll(store, people, "big", name)
    enroll(store, people, "small", "solo")
    gallery = Gallery("face", "m1", DIM, exact_max=40)
    gallery.rebuild(store)
    assert gallery.describe()["big"] == ("exact", 30)
    assert gallery.size("big") == 30 and gallery.size("no-such-tenant") == 0
    for name in names[30:]:
        enroll(store, people, "big", name)
    gallery.catch_up(store)
    assert gallery.describe()["big"] == ("exact", 60)  # catch_up never rebuilds an index
    assert gallery.maintain() == 1
    assert gallery.describe() == {"big": ("pq-fastscan", 60), "small": ("exact", 1)}
    assert all(top(gallery, "big", people.probe(n)) == n for n in names)
    for name in names[:5]:
        store.delete_subject("big", name)  # 5 of 60 dead (< 10%): tombstones
    gallery.catch_up(store)
    assert gallery.maintain() == 0
    assert gallery.describe()["big"] == ("pq-fastscan", 55)
    assert all(top(gallery, "big", people.probe(n)) not in names[:5] for n in names)
    for name in names[5:7]:
        store.delete_subject("big", name)  # 7 of 60 dead: compacted
    gallery.catch_up(store)
    assert gallery.maintain() == 1
    assert gallery.describe()["big"] == ("pq-fastscan", 53)
    assert all(top(gallery, "big", people.probe(n)) == n for n in names[7:])
    for name in names[7:45]:
        store.delete_subject("big", name)
    gallery.catch_up(store)  # 15 left, below exact_max / 2
    assert gallery.maintain() == 1
    assert gallery.describe()["big"] == ("exact", 15)
    assert all(top(gallery, "big", people.probe(n)) == n for n in names[45:])
    gallery.rebuild(store)
    assert gallery.describe()["big"] == ("exact", 15)


def test_snapshot_then_catch_up_after_restart(store: SqliteTemplateStore, tmp_path: Path) -> None:
    people = People(4)
    for name in ("ann", "bob"):
        enroll(store, people, "t", name)
    for i in range(50):
        enroll(store, people, "big", f"s{i}")
    snapshots = tmp_path / "snapshots"
    gallery = Gallery("face", "m1", DIM, exact_max=40)
    gallery.rebuild(store)
    gallery.save(snapshots)
    first_seq = gallery.seq
    gallery.save(snapshots)  # a second save replaces the first
    assert len(list(snapshots.glob("snapshot-*"))) == 1
    # While "down": the store moves on.
    store.delete_subject("t", "bob")
    enroll(store, people, "t", "cyd")
    store.delete_subject("big", "s7")

    restarted = Gallery("face", "m1", DIM, exact_max=40)
    assert restarted.load(snapshots) and restarted.seq == first_seq
    assert restarted.describe() == gallery.describe()
    assert restarted.restore(store, snapshots) == "snapshot"
    assert restarted.seq == store.latest_seq()
    assert {s for s, _ in restarted.search("t", people.probe("bob"), 5)} == {"ann", "cyd"}
    assert top(restarted, "big", people.probe("s7")) != "s7"
    assert top(restarted, "big", people.probe("s8")) == "s8"
    # Ids allocated after the snapshot never collide with the snapshot's.
    enroll(store, people, "big", "s99")
    restarted.catch_up(store)
    assert top(restarted, "big", people.probe("s99")) == "s99"
    assert top(restarted, "big", people.probe("s8")) == "s8"


def test_unusable_snapshots_fall_back_to_a_rebuild(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    people = People(5)
    enroll(store, people, "t", "ann")
    gallery = Gallery("face", "m1", DIM)
    assert not gallery.load(tmp_path / "none-yet")
    gallery.rebuild(store)
    gallery.save(tmp_path / "snap")
    other_model = Gallery("face", "m2", DIM)
    assert not other_model.load(tmp_path / "snap")
    assert other_model.restore(store, tmp_path / "snap") == "rebuild"
    assert len(other_model) == 0
    # A snapshot ahead of the store belongs to another store.
    fresh = SqliteTemplateStore(tmp_path / "other.sqlite3")
    try:
        g = Gallery("face", "m1", DIM)
        assert g.restore(fresh, tmp_path / "snap") == "rebuild" and len(g) == 0
    finally:
        fresh.close()
    (tmp_path / "snap" / "CURRENT").write_text("snapshot-missing")
    assert not Gallery("face", "m1", DIM).load(tmp_path / "snap")


def subjects(gallery: Gallery, tenant: str, people: People) -> set[str]:
    """Every subject of ``tenant`` the gallery holds (searched with any probe, k large)."""
    return {s for s, _ in gallery.search(tenant, people.probe("anyone"), 1_000)}


def test_a_snapshot_of_another_store_at_the_same_seq_is_not_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    people = People(9)
    first = SqliteTemplateStore(tmp_path / "first.sqlite3")
    second = SqliteTemplateStore(tmp_path / "second.sqlite3")  # e.g. a data dir swapped
    try:
        enroll(first, people, "t", "ann")
        enroll(second, people, "t", "bob")
        assert first.latest_seq() == second.latest_seq() == 1
        gallery = Gallery("face", "m1", DIM)
        gallery.rebuild(first)
        gallery.save(tmp_path / "snap")
        restarted = Gallery("face", "m1", DIM)
        with caplog.at_level(logging.WARNING, logger="bioverify.index.gallery"):
            assert restarted.restore(second, tmp_path / "snap") == "rebuild"
        assert subjects(restarted, "t", people) == {"bob"}
        assert "emptied or replaced" in caplog.text and "rebuilding" in caplog.text
        assert restarted.follows(second.feed_position())
        # The snapshot of this very store is still used.
        restarted.save(tmp_path / "snap2")
        assert Gallery("face", "m1", DIM).restore(second, tmp_path / "snap2") == "snapshot"
    finally:
        first.close()
        second.close()


def test_a_snapshot_made_before_epochs_is_rebuilt(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    people = People(10)
    enroll(store, people, "t", "ann")
    gallery = Gallery("face", "m1", DIM)
    gallery.rebuild(store)
    snap = gallery.save(tmp_path / "snap")
    manifest = json.loads((snap / "manifest.json").read_text())
    del manifest["store_epoch"]
    (snap / "manifest.json").write_text(json.dumps(manifest))
    assert Gallery("face", "m1", DIM).restore(store, tmp_path / "snap") == "rebuild"


def test_catch_up_rebuilds_from_another_store_ahead_of_the_gallery(tmp_path: Path) -> None:
    people = People(11)
    first = SqliteTemplateStore(tmp_path / "first.sqlite3")
    second = SqliteTemplateStore(tmp_path / "second.sqlite3")
    try:
        enroll(first, people, "t", "ann")
        for name in ("bob", "cyd", "dan"):
            enroll(second, people, "t", name)
        gallery = Gallery("face", "m1", DIM)
        gallery.rebuild(first)
        # Changes 2 and 3 of the second store say nothing about what the gallery holds.
        gallery.catch_up(second)
        assert subjects(gallery, "t", people) == {"bob", "cyd", "dan"}
        assert gallery.seq == 3 and gallery.follows(second.feed_position())
    finally:
        first.close()
        second.close()


def test_catch_up_rebuilds_when_the_store_went_back_to_an_older_backup(tmp_path: Path) -> None:
    people = People(12)
    path, backup = tmp_path / "live.sqlite3", tmp_path / "backup.sqlite3"
    live = SqliteTemplateStore(path)
    enroll(live, people, "t", "ann")
    live.close()
    shutil.copyfile(path, backup)  # same feed epoch, seq 1
    live = SqliteTemplateStore(path)
    restored = SqliteTemplateStore(backup)
    try:
        enroll(live, people, "t", "bob")
        enroll(live, people, "t", "cyd")
        gallery = Gallery("face", "m1", DIM)
        gallery.rebuild(live)
        assert gallery.seq == 3
        enroll(restored, people, "t", "dan")  # seq 2: behind the gallery's
        assert restored.feed_position().epoch == live.feed_position().epoch
        gallery.catch_up(restored)
        assert subjects(gallery, "t", people) == {"ann", "dan"}
        assert gallery.seq == 2
    finally:
        live.close()
        restored.close()


def test_a_gallery_behind_the_pruned_change_feed_rebuilds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    people = People(9)
    store = SqliteTemplateStore(tmp_path / "short.sqlite3", change_retention=2)
    try:
        enroll(store, people, "t", "ann")
        enroll(store, people, "t", "bob")
        gallery = Gallery("face", "m1", DIM)
        gallery.rebuild(store)
        stopped = Gallery("face", "m1", DIM)  # a replica that saved its snapshot and stopped
        stopped.rebuild(store)
        stopped.save(tmp_path / "snap")
        bob = store.get_template("t", "bob", "face").vector
        behind = Gallery("face", "m1", DIM)
        behind.rebuild(store)
        # While the galleries look away, bob's deletion leaves the feed.
        store.delete_subject("t", "bob")
        for name in ("cyd", "dan", "eve"):
            enroll(store, people, "t", name)
        assert store.pruned_seq() > gallery.seq
        everyone = {"ann", "cyd", "dan", "eve"}

        assert gallery.catch_up(store) > 0
        assert "rebuilding" in caplog.text
        assert gallery.seq == store.latest_seq()
        assert {s for s, _ in gallery.search("t", people.probe("bob"), 10)} == everyone
        # Changes fetched by the follower's wait: the same.
        behind.apply_changes(store, store.wait_for_changes(behind.seq, 0))
        assert behind.seq == store.latest_seq()
        assert {s for s, _ in behind.search("t", people.probe("bob"), 10)} == everyone
        # A restart from a snapshot older than the feed: rebuilt, and the snapshot, which
        # still holds bob, is removed.
        held = files_holding(tmp_path, bob)
        assert held and all(p.is_relative_to(tmp_path / "snap") for p in held)
        restarted = Gallery("face", "m1", DIM)
        restarted.restore(store, tmp_path / "snap")  # loaded, then rebuilt by its catch-up
        assert {s for s, _ in restarted.search("t", people.probe("bob"), 10)} == everyone
        assert files_holding(tmp_path, bob) == []
        # A gallery that keeps up applies the changes, no rebuild.
        caplog.clear()
        enroll(store, people, "t", "flo")
        store.delete_subject("t", "ann")
        gallery.catch_up(store)
        assert "rebuilding" not in caplog.text
        assert {s for s, _ in gallery.search("t", people.probe("flo"), 10)} == {
            "cyd",
            "dan",
            "eve",
            "flo",
        }
    finally:
        store.close()


def test_follower_keeps_the_gallery_current_and_stops(store: SqliteTemplateStore) -> None:
    people = People(6)
    enroll(store, people, "t", "ann")
    for i in range(20):
        enroll(store, people, "big", f"s{i}")
    gallery = Gallery("face", "m1", DIM, exact_max=20)
    gallery.rebuild(store)
    follower = GalleryFollower(gallery, store, poll=0.2)
    follower.start()
    try:
        enroll(store, people, "t", "bob")
        assert wait_until(lambda: top(gallery, "t", people.probe("bob")) == "bob")
        store.delete_subject("t", "ann")
        assert wait_until(lambda: top(gallery, "t", people.probe("ann")) != "ann")
        enroll(store, people, "big", "s20")  # the follower also switches the partition to ANN
        assert wait_until(lambda: gallery.describe()["big"] == ("pq-fastscan", 21))
    finally:
        started = time.monotonic()
        follower.stop(timeout=5.0)
    assert not follower.running and time.monotonic() - started < 1.0
    assert follower.last_error is None


@pytest.mark.parametrize("kind", ["exact", "pq-fastscan"])
def test_a_deleted_subject_leaves_no_file_behind(
    store: SqliteTemplateStore, tmp_path: Path, kind: str
) -> None:
    """Whatever under the data dir held a subject's template (the store's file, a gallery
    snapshot) no longer does once the follower has applied the subject's deletion."""
    people = People(13)
    names = [f"s{i:02d}" for i in range(30)]
    for name in names:
        enroll(store, people, "t", name)
    enroll(store, people, "u", "solo")
    gallery = Gallery("face", "m1", DIM, exact_max=40 if kind == "exact" else 20)
    gallery.rebuild(store)
    gallery.maintain()
    assert gallery.describe()["t"] == (kind, 30)
    snapshots = tmp_path / "index" / "face"
    gallery.save(snapshots)
    victim = store.get_template("t", "s03", "face").vector
    kept = store.get_template("t", "s04", "face").vector
    assert files_holding(snapshots, victim) and files_holding(snapshots, kept)
    follower = GalleryFollower(gallery, store, poll=0.2)
    follower.start()
    try:
        enroll(store, people, "t", "new")  # enrolments keep the snapshot (a crash restores it)
        assert wait_until(lambda: top(gallery, "t", people.probe("new")) == "new")
        assert files_holding(snapshots, victim)
        store.delete_subject("t", "s03")  # e.g. through another replica
        assert wait_until(lambda: not files_holding(tmp_path, victim), timeout=1.0)
        assert top(gallery, "t", people.probe("s03")) != "s03"
        assert not (snapshots / "CURRENT").exists()
    finally:
        follower.stop(timeout=5.0)
    assert follower.last_error is None
    # At shutdown: the new snapshot holds the others, not the deleted subject (an ANN
    # partition still has it as a tombstone: 1 of 31 dead is below the compaction threshold).
    assert gallery.describe()["t"] == (kind, 30)
    gallery.save(snapshots)
    assert files_holding(snapshots, kept)
    assert files_holding(tmp_path, victim) == []
    restarted = Gallery("face", "m1", DIM, exact_max=40 if kind == "exact" else 20)
    assert restarted.restore(store, snapshots) == "snapshot"
    assert subjects(restarted, "t", people) == (set(names) | {"new"}) - {"s03"}


def ann_and_bob_saved(store: SqliteTemplateStore, tmp_path: Path, seed: int) -> tuple[Gallery, F32]:
    """ann and bob enrolled, a gallery of them saved to ``tmp_path/snap``; bob's vector."""
    people = People(seed)
    for name in ("ann", "bob"):
        enroll(store, people, "t", name)
    gallery = Gallery("face", "m1", DIM)
    gallery.rebuild(store)
    gallery.save(tmp_path / "snap")
    return gallery, store.get_template("t", "bob", "face").vector


def test_a_replicas_own_deletion_removes_its_snapshot_before_returning(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    """``DeleteSubject`` catches the galleries up on the request thread: no follower needed."""
    _, bob = ann_and_bob_saved(store, tmp_path, 14)
    restarted = Gallery("face", "m1", DIM)
    assert restarted.restore(store, tmp_path / "snap") == "snapshot"  # loaded, still there
    assert files_holding(tmp_path / "snap", bob)
    store.delete_subject("t", "bob")
    restarted.catch_up(store)
    assert files_holding(tmp_path, bob) == []


def test_a_deletion_and_re_enrolment_caught_up_together_remove_the_snapshot(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    """A replica down while a subject was deleted and enrolled again applies both in one
    batch at restart: the net change is an upsert, but the snapshot held the erased vector."""
    people = People(16)
    for name in ("ann", "bob"):
        enroll(store, people, "t", name)
    gallery = Gallery("face", "m1", DIM)
    assert gallery.restore(store, tmp_path / "snap") == "rebuild"
    gallery.save(tmp_path / "snap")  # graceful shutdown
    old_bob = store.get_template("t", "bob", "face").vector
    assert files_holding(tmp_path / "snap", old_bob)
    store.delete_subject("t", "bob")  # served by another replica while this one is down
    enroll(store, people, "t", "bob")  # new samples
    restarted = Gallery("face", "m1", DIM)
    assert restarted.restore(store, tmp_path / "snap") == "snapshot"
    assert files_holding(tmp_path, old_bob) == []
    new_bob = store.get_template("t", "bob", "face").vector
    assert restarted.search("t", new_bob, 1)[0][0] == "bob"
    # A subject the gallery did not hold (enrolled, deleted and enrolled again while down)
    # was in no snapshot: the snapshot stays.
    restarted.save(tmp_path / "snap")
    enroll(store, people, "t", "cat")
    store.delete_subject("t", "cat")
    enroll(store, people, "t", "cat")
    again = Gallery("face", "m1", DIM)
    assert again.restore(store, tmp_path / "snap") == "snapshot"
    assert (tmp_path / "snap" / "CURRENT").exists()
    assert subjects(again, "t", people) == {"ann", "bob", "cat"}


def test_a_snapshot_that_cannot_be_removed_is_retried(
    store: SqliteTemplateStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gallery, bob = ann_and_bob_saved(store, tmp_path, 15)

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("bioverify.index.gallery.shutil.rmtree", refuse)
    store.delete_subject("t", "bob")
    with caplog.at_level(logging.ERROR, logger="bioverify.index.gallery"):
        gallery.catch_up(store)  # the change is applied all the same
    assert "may hold deleted subjects" in caplog.text and "bob" not in caplog.text
    assert subjects(gallery, "t", People(15)) == {"ann"}
    assert not (tmp_path / "snap" / "CURRENT").exists()  # no longer loadable, though
    assert files_holding(tmp_path, bob)
    monkeypatch.undo()
    gallery.maintain()  # the follower's next round
    assert files_holding(tmp_path, bob) == []


def test_searches_run_while_changes_are_applied(store: SqliteTemplateStore) -> None:
    people = People(7)
    for i in range(20):
        enroll(store, people, "t", f"s{i}")
    gallery = Gallery("face", "m1", DIM, exact_max=25)
    gallery.rebuild(store)
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                hits = gallery.search("t", people.centre("s3"), 3)
                assert hits and hits[0][0] == "s3"
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(20, 40):  # crosses exact_max: an ANN is built and swapped in
            enroll(store, people, "t", f"s{i}")
            gallery.catch_up(store)
            gallery.maintain()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert gallery.describe()["t"] == ("pq-fastscan", 40)


def test_ann_factory_is_pluggable(store: SqliteTemplateStore) -> None:
    people = People(8)
    for i in range(20):
        enroll(store, people, "t", f"s{i}")
    built: list[int] = []

    def factory(ids: npt.NDArray[np.int64], vectors: F32) -> FastScanIndex:
        built.append(len(ids))
        return FastScanIndex.build(ids, vectors, rerank=8)

    gallery = Gallery("face", "m1", DIM, exact_max=10, ann_factory=factory)
    gallery.rebuild(store)
    assert built == [20]
    assert top(gallery, "t", people.probe("s4")) == "s4"


@pytest.mark.parametrize("size", [10, 60])  # exact, and ANN above exact_max
def test_search_many_is_search_per_row(store: SqliteTemplateStore, size: int) -> None:
    people = People(7)
    names = [f"p{i:03d}" for i in range(size)]
    for name in names:
        enroll(store, people, "t", name)
    gallery = Gallery("face", "m1", DIM, exact_max=40)
    gallery.rebuild(store)
    gallery.maintain()
    probes = np.stack([people.probe(n) for n in names[:8]])
    many = gallery.search_many("t", probes, 3)
    assert len(many) == 8
    for probe, row, name in zip(probes, many, names[:8], strict=True):
        one = gallery.search("t", probe, 3)
        assert [s for s, _ in row] == [s for s, _ in one]  # batched BLAS: float32 rounding
        np.testing.assert_allclose([c for _, c in row], [c for _, c in one], atol=1e-6)
        assert row[0][0] == name
    if size <= 40:  # exact search: the same ranking as scoring every template by hand
        templates = {t.subject_id: t.vector for t in store.iter_templates("face", "m1")}
        for probe, row in zip(probes, many, strict=True):
            by_hand = sorted(
                ((cosine_similarity(probe, v), s) for s, v in templates.items()), reverse=True
            )[:3]
            assert [s for s, _ in row] == [s for _, s in by_hand]
            np.testing.assert_allclose([c for _, c in row], [c for c, _ in by_hand], atol=1e-5)
    assert gallery.search_many("nobody", probes, 3) == [[]] * 8


def test_a_gallery_not_yet_built_refuses_searches_instead_of_answering_nobody(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    """The server starts before the galleries are restored (health says NOT_SERVING): until
    then a search must not answer "nobody enrolled matches", nor a duplicate check "no
    duplicate"; a catch-up (a replica's own delete) waits for the restore to read the store."""
    people = People(5)
    enroll(store, people, "t", "ann")
    gallery = Gallery("face", "m1", DIM)
    assert not gallery.ready
    with pytest.raises(Unavailable, match="still loading"):
        gallery.search("t", people.probe("ann"), 5)
    with pytest.raises(Unavailable):
        gallery.search_many("t", np.stack([people.probe("ann")]), 5)
    with pytest.raises(Unavailable):
        gallery.size("t")
    assert gallery.catch_up(store) == 0 and len(gallery) == 0  # no early rebuild
    assert gallery.restore(store, tmp_path / "snap") == "rebuild"
    assert gallery.ready and top(gallery, "t", people.probe("ann")) == "ann"
    gallery.save(tmp_path / "snap")
    restarted = Gallery("face", "m1", DIM)
    assert restarted.load(tmp_path / "snap") and not restarted.ready  # loaded, not caught up
    assert restarted.restore(store, tmp_path / "snap") == "snapshot" and restarted.ready
