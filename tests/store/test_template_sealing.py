"""Templates sealed at rest (AES-256-GCM): the sealer itself, and both stores with it. The
stores keep no embedding bytes in the clear, a sealed blob moved to another subject or altered
is refused, and a store written without keys is sealed by ``reseal_templates``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import redis

from bioverify.errors import ConfigurationError, MetadataUnreadable, TemplateUnreadable
from bioverify.store.ports import Template, TemplateStore, TemplateWrite, listing_bytes
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.resealing import reseal_templates
from bioverify.store.sealing import (
    NO_SEALING,
    SEALED_PREFIX,
    AesGcmSealer,
    BlobPlace,
    BlobSealer,
    SubjectMetadata,
    key_id,
    read_template_keys,
)
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.usecases.subjects import SubjectAdministration
from tests.store.test_erasure import files_of, redis_values, traces, unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(32, 64))
ALICE = BlobPlace("bank", "alice", "face", "vector")
PLAIN = np.array([0.6, -0.8], np.float32).tobytes()
# Sealed by the first version of this format: stored templates must open in later versions.
GOLDEN = bytes.fromhex(
    "ffffff7f4256533186cb1889cf616ab3dae7aae63c3e8c552912e9d8f82056afef9fa396f3a2de287c7fbe"
    "29e94262f1ff1aeb04"
)


# -- the sealer --------------------------------------------------------------------------------
def test_a_blob_sealed_by_the_first_version_opens() -> None:
    assert key_id(KEY).hex() == "86cb1889cf616ab3"
    assert GOLDEN.startswith(SEALED_PREFIX + key_id(KEY))
    assert AesGcmSealer([KEY]).open(GOLDEN, ALICE) == PLAIN


def test_sealing_round_trips_with_a_fresh_nonce_each_time() -> None:
    sealer = AesGcmSealer([KEY])
    first, second = sealer.seal(PLAIN, ALICE), sealer.seal(PLAIN, ALICE)
    assert first != second  # random nonces: equal templates do not look equal
    assert len(first) == len(PLAIN) + len(SEALED_PREFIX) + 8 + 12 + 16
    assert PLAIN not in first
    assert sealer.open(first, ALICE) == sealer.open(second, ALICE) == PLAIN


def test_no_plain_embedding_blob_begins_like_a_sealed_one() -> None:
    assert np.isnan(np.frombuffer(SEALED_PREFIX[:4], np.float32)[0])


@pytest.mark.parametrize(
    "elsewhere",
    [
        BlobPlace("bank", "mallory", "face", "vector"),  # another subject
        BlobPlace("other-bank", "alice", "face", "vector"),  # another tenant
        BlobPlace("bank", "alice", "voice", "vector"),  # another modality
        BlobPlace("bank", "alice", "face", "samples"),  # another column
        BlobPlace("bank", "alic", "eface", "vector"),  # the same characters, split elsewhere
    ],
)
def test_a_sealed_blob_opens_only_where_it_was_stored(elsewhere: BlobPlace) -> None:
    sealer = AesGcmSealer([KEY])
    with pytest.raises(TemplateUnreadable, match="failed its integrity check"):
        sealer.open(sealer.seal(PLAIN, ALICE), elsewhere)


@pytest.mark.parametrize(
    "alter",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # the tag
        lambda b: b[:40] + bytes([b[40] ^ 0x80]) + b[41:],  # the ciphertext
        lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:],  # the nonce
        lambda b: b[:30],  # cut short
        lambda b: b[:10],  # shorter than a header
    ],
)
def test_an_altered_blob_is_refused(alter: Callable[[bytes], bytes]) -> None:
    sealer = AesGcmSealer([KEY])
    with pytest.raises(TemplateUnreadable, match="integrity check"):
        sealer.open(alter(sealer.seal(PLAIN, ALICE)), ALICE)


def test_rotation_seals_with_the_first_key_and_opens_with_every_key() -> None:
    old = AesGcmSealer([KEY]).seal(PLAIN, ALICE)
    rotated = AesGcmSealer([OTHER_KEY, KEY])
    assert rotated.open(old, ALICE) == PLAIN
    new = rotated.seal(PLAIN, ALICE)
    assert new.startswith(SEALED_PREFIX + key_id(OTHER_KEY))
    assert AesGcmSealer([OTHER_KEY]).open(new, ALICE) == PLAIN
    with pytest.raises(TemplateUnreadable, match="key this service does not hold"):
        AesGcmSealer([OTHER_KEY]).open(old, ALICE)


def test_plain_blobs_are_read_only_while_migrating() -> None:
    assert NO_SEALING.seal(PLAIN, ALICE) == PLAIN
    assert NO_SEALING.open(PLAIN, ALICE) == PLAIN
    assert AesGcmSealer([KEY], allow_unsealed=True).open(PLAIN, ALICE) == PLAIN
    with pytest.raises(TemplateUnreadable, match="stored unencrypted"):
        AesGcmSealer([KEY]).open(PLAIN, ALICE)
    with pytest.raises(TemplateUnreadable, match="holds no template key"):
        NO_SEALING.open(AesGcmSealer([KEY]).seal(PLAIN, ALICE), ALICE)


def test_key_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "template.keys"
    path.write_text(f"# rotated 2026-12\n{OTHER_KEY.hex()}\n\n{KEY.hex().upper()}  # old\n")
    path.chmod(0o600)
    assert read_template_keys(path) == [OTHER_KEY, KEY]
    assert "other users" not in caplog.text
    path.chmod(0o640)
    with caplog.at_level(logging.WARNING):
        read_template_keys(path)
    assert "can be read by other users" in caplog.text
    assert KEY.hex() not in caplog.text.lower() and OTHER_KEY.hex() not in caplog.text.lower()
    for text, problem in [
        ("", "holds no key"),
        ("# none\n", "holds no key"),
        (f"{KEY.hex()}\n{KEY.hex()[:-2]}\n", "line 2 .* is not a key"),
        ("not-hex-" * 8, "line 1 .* is not a key"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=problem):
            read_template_keys(path)
    with pytest.raises(ConfigurationError, match="cannot read the template key file"):
        read_template_keys(tmp_path / "missing.keys")


# -- the stores --------------------------------------------------------------------------------
def move_sqlite_template(db_path: Path, source: str, target: str) -> None:
    """Copy ``source``'s stored face blobs onto ``target``'s row, behind the store's back."""
    with sqlite3.connect(db_path) as db:
        db.execute(
            "UPDATE templates SET vector=(SELECT vector FROM templates WHERE subject_id=?), "
            "samples=(SELECT samples FROM templates WHERE subject_id=?) WHERE subject_id=?",
            (source, source, target),
        )


class StoreUnderTest:
    """The one store of a test (a file, or a real Redis), opened with any sealer, and what it
    keeps as bytes."""

    def __init__(self, kind: str, path: Path, redis_url: str) -> None:
        self.kind, self.path, self.redis_url = kind, path, redis_url
        self.opened: list[TemplateStore] = []

    def __call__(self, sealer: BlobSealer) -> TemplateStore:
        store: TemplateStore
        if self.kind == "redis":
            store = RedisTemplateStore(self.redis_url, sealer=sealer)
        else:
            store = SqliteTemplateStore(self.path, sealer=sealer)
        self.opened.append(store)
        return store

    def raw_bytes(self) -> bytes:
        """Every byte the store keeps: the SQLite files, or every Redis key and value."""
        return files_of(self.path) if self.kind == "sqlite" else redis_values(self.redis_url)

    def move_template(self, source: str, target: str) -> None:
        """Copy ``source``'s stored face blobs onto ``target``'s, behind the store's back."""
        if self.kind == "sqlite":
            move_sqlite_template(self.path, source, target)
            return
        keys = RedisTemplateStore(self.redis_url)
        try:
            with redis.Redis.from_url(self.redis_url) as client:
                blobs = client.hmget(keys._template_key("bank", source, "face"), ["vec", "samples"])
                vector, samples = blobs
                assert isinstance(vector, bytes) and isinstance(samples, bytes)
                client.hset(
                    keys._template_key("bank", target, "face"),
                    mapping={"vec": vector, "samples": samples},
                )
        finally:
            keys.close()


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    stores = StoreUnderTest(request.param, tmp_path / "t.sqlite3", url)
    yield stores
    for store in stores.opened:
        store.close()


def enrol(
    store: TemplateStore, subject_id: str, samples: np.ndarray, modality: str = "face"
) -> Template:
    return store.save(
        TemplateWrite(
            "bank",
            subject_id,
            modality,
            "m",
            samples,
            sample_ids=[f"{subject_id}-{i}" for i in range(len(samples))],
            extra={"speech_s": 1.5},
        )
    )


def same_template(a: Template, b: Template) -> bool:
    return (
        np.array_equal(a.samples, b.samples)
        and np.array_equal(a.vector, b.vector)
        and a.sample_ids == b.sample_ids
        and dict(a.extra) == dict(b.extra)
        and a.created_at == b.created_at
    )


def test_a_sealing_store_keeps_no_embedding_in_the_clear(open_store: StoreUnderTest) -> None:
    rng = np.random.default_rng(7)
    store = open_store(AesGcmSealer([KEY]))
    first, second = unit(rng, 2, 512), unit(rng, 1, 512)
    enrol(store, "alice", first)
    extended = store.save(TemplateWrite("bank", "alice", "face", "m", second))  # reads, seals
    assert np.array_equal(extended.samples, np.concatenate([first, second]))
    stored = store.get_template("bank", "alice", "face")
    assert same_template(stored, extended)
    assert [t.subject_id for t in store.iter_templates("face")] == ["alice"]
    assert traces(open_store.raw_bytes(), stored.samples, stored.vector) == 0
    plain_store = open_store(NO_SEALING)  # the test can see embeddings stored in the clear
    enrol(plain_store, "bob", second)
    bob = plain_store.get_template("bank", "bob", "face")
    assert traces(open_store.raw_bytes(), bob.samples, bob.vector) > 0.9


def test_a_template_moved_onto_another_subject_is_refused(
    open_store: StoreUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(8)
    store = open_store(AesGcmSealer([KEY]))
    enrol(store, "alice", unit(rng, 2, 128))
    enrol(store, "mallory", unit(rng, 2, 128))
    open_store.move_template("alice", "mallory")  # mallory would verify as alice
    with pytest.raises(TemplateUnreadable, match=r"'mallory'.*failed its integrity check"):
        store.get_template("bank", "mallory", "face")
    with pytest.raises(TemplateUnreadable):  # nor is it extended
        store.save(TemplateWrite("bank", "mallory", "face", "m", unit(rng, 1, 128)))
    with caplog.at_level(logging.ERROR):  # a scan leaves it out and says so
        assert [t.subject_id for t in store.iter_templates("face")] == ["alice"]
    assert "'mallory'" in caplog.text and "left out" in caplog.text
    store.save(TemplateWrite("bank", "mallory", "face", "m", unit(rng, 1, 128), replace=True))
    assert store.get_template("bank", "mallory", "face").sample_count == 1
    assert store.delete_subject("bank", "mallory") == 1


def test_a_sealed_store_is_unreadable_without_its_key(open_store: StoreUnderTest) -> None:
    rng = np.random.default_rng(9)
    enrol(open_store(AesGcmSealer([KEY])), "alice", unit(rng, 2, 128))
    with pytest.raises(TemplateUnreadable, match="holds no template key"):
        open_store(NO_SEALING).get_template("bank", "alice", "face")
    with pytest.raises(TemplateUnreadable, match="key this service does not hold"):
        open_store(AesGcmSealer([OTHER_KEY])).get_template("bank", "alice", "face")


def test_resealing_moves_a_plain_store_to_sealed_and_rotates_keys(
    open_store: StoreUnderTest,
) -> None:
    rng = np.random.default_rng(10)
    plain = open_store(NO_SEALING)
    before = {
        "alice": enrol(plain, "alice", unit(rng, 3, 512)),
        "bob": enrol(plain, "bob", unit(rng, 2, 512)),
        "alice-voice": enrol(plain, "alice", unit(rng, 2, 192), "voice"),
    }
    with pytest.raises(TemplateUnreadable, match="stored unencrypted"):
        open_store(AesGcmSealer([KEY])).get_template("bank", "alice", "face")

    migrating = open_store(AesGcmSealer([KEY], allow_unsealed=True))
    report = reseal_templates(migrating)
    assert report.sealed == {"face": 2, "voice": 1} and report.gone == 0
    if isinstance(migrating, SqliteTemplateStore):
        migrating.erase_replaced()
    sealed = open_store(AesGcmSealer([KEY]))  # plain templates are no longer accepted
    after = {
        "alice": sealed.get_template("bank", "alice", "face"),
        "bob": sealed.get_template("bank", "bob", "face"),
        "alice-voice": sealed.get_template("bank", "alice", "voice"),
    }
    raw = open_store.raw_bytes()
    for name, template in before.items():
        assert same_template(after[name], template), name
        assert after[name].revision > template.revision  # galleries re-read it
        assert traces(raw, template.samples, template.vector) == 0, name

    assert reseal_templates(open_store(AesGcmSealer([OTHER_KEY, KEY]))).sealed["face"] == 2
    rotated = open_store(AesGcmSealer([OTHER_KEY]))  # the old key is no longer needed
    for name, template in before.items():
        modality = "voice" if name.endswith("voice") else "face"
        again = rotated.get_template("bank", name.removesuffix("-voice"), modality)
        assert same_template(again, template), name


@pytest.mark.parametrize("sealer", [NO_SEALING, AesGcmSealer([KEY])], ids=["plain", "sealed"])
def test_a_redis_template_record_copied_onto_another_key_is_refused(
    redis_url: str, sealer: BlobSealer
) -> None:
    """The whole hash, its own tenant and subject fields included, copied onto another
    subject's key: the record names another subject than its key, sealed or not."""
    rng = np.random.default_rng(11)
    store = RedisTemplateStore(redis_url, sealer=sealer)
    try:
        enrol(store, "alice", unit(rng, 2, 128))
        enrol(store, "mallory", unit(rng, 2, 128))
        source = store._template_key("bank", "mallory", "face")
        target = store._template_key("bank", "alice", "face")
        with redis.Redis.from_url(redis_url) as client:
            client.copy(source, target, replace=True)
        with pytest.raises(TemplateUnreadable, match=r"'alice'.*another subject's name"):
            store.get_template("bank", "alice", "face")
        assert [t.subject_id for t in store.iter_templates("face")] == ["mallory"]
        with pytest.raises(TemplateUnreadable):  # nor extended (its samples would stay)
            store.save(TemplateWrite("bank", "alice", "face", "m", unit(rng, 1, 128)))
        store.save(TemplateWrite("bank", "alice", "face", "m", unit(rng, 1, 128), replace=True))
        assert store.get_template("bank", "alice", "face").sample_count == 1
    finally:
        store.close()


def test_a_gallery_catching_up_leaves_an_unreadable_template_out(tmp_path: Path) -> None:
    from bioverify.index.gallery import Gallery

    rng = np.random.default_rng(12)
    store = SqliteTemplateStore(tmp_path / "t.sqlite3", sealer=AesGcmSealer([KEY]))
    try:
        enrol(store, "alice", unit(rng, 2, 128))
        gallery = Gallery("face", "m", 128)
        gallery.rebuild(store)
        enrol(store, "mallory", unit(rng, 2, 128))  # a change the gallery has not seen
        move_sqlite_template(tmp_path / "t.sqlite3", "alice", "mallory")
        gallery.catch_up(store)  # does not stall on mallory: drops it and moves on
        assert gallery.seq == store.latest_seq() and len(gallery) == 1
    finally:
        store.close()


def test_resealing_counts_the_templates_it_cannot_open(open_store: StoreUnderTest) -> None:
    """A template sealed with a key the run does not hold is left out and counted (the CLI
    then exits 1), and the others are sealed."""
    rng = np.random.default_rng(13)
    enrol(open_store(AesGcmSealer([OTHER_KEY])), "alice", unit(rng, 2, 128))
    enrol(open_store(NO_SEALING), "bob", unit(rng, 2, 128))
    report = reseal_templates(open_store(AesGcmSealer([KEY], allow_unsealed=True)))
    assert report.sealed == {"face": 1, "voice": 0} and report.unreadable == 1
    assert open_store(AesGcmSealer([KEY])).get_template("bank", "bob", "face").sample_count == 2


# -- subjects' metadata ------------------------------------------------------------------------
ALICE_META = {"display_name": "Alice Quorrendale", "branch": "Xanthic Row 17"}


# Sealed by the first version of metadata sealing: one value (Redis), a whole record (SQLite).
GOLDEN_VALUE = bytes.fromhex(
    "ffffff7f4256533186cb1889cf616ab33c95a25fb540d681d1bab9efe90a7f000ff584d8ba06a8271bde460364"
    "4c546525aa00e7f3781bc9017f1bc13f"
)
GOLDEN_RECORD = bytes.fromhex(
    "ffffff7f4256533186cb1889cf616ab3e17e794db1f3fbaa82d4d1a242cdf281d0095cae4145eafc4d26f02635"
    "cd2faccef9863e4a2a2ca8fd96fe"
)


def test_metadata_sealed_by_the_first_version_opens() -> None:
    sealer = AesGcmSealer([KEY])
    alice = SubjectMetadata(sealer, "bank", "alice")
    assert alice.open(GOLDEN_VALUE, "display_name") == "Alice Quorrendale"
    assert alice.open(GOLDEN_RECORD) == '{"branch": "x"}'
    with pytest.raises(MetadataUnreadable, match="'alice''s metadata failed"):
        alice.open(GOLDEN_VALUE, "branch")
    with pytest.raises(MetadataUnreadable, match="'alice''s metadata failed"):  # other tenant
        SubjectMetadata(sealer, "corp", "alice").open(GOLDEN_VALUE, "display_name")
    with pytest.raises(TemplateUnreadable):  # a template's place never opens metadata
        sealer.open(GOLDEN_RECORD, BlobPlace("bank", "alice", "face", "vector"))


def enrol_with(store: TemplateStore, subject_id: str, metadata: dict[str, str]) -> None:
    rng = np.random.default_rng(len(subject_id))
    store.save(TemplateWrite("bank", subject_id, "face", "m", unit(rng, 1, 128), metadata))


def metadata_traces(raw: bytes, metadata: dict[str, str]) -> int:
    return sum(value.encode() in raw for value in metadata.values())


def test_a_sealing_store_keeps_no_metadata_value_in_the_clear(open_store: StoreUnderTest) -> None:
    store = open_store(AesGcmSealer([KEY]))
    enrol_with(store, "alice", {"display_name": ALICE_META["display_name"]})
    enrol_with(store, "alice", {"branch": ALICE_META["branch"]})  # merged with what is stored
    assert store.get_subject("bank", "alice").metadata == ALICE_META
    (listed,) = store.list_subjects("bank", limit=10)
    assert listed.metadata == ALICE_META
    assert metadata_traces(open_store.raw_bytes(), ALICE_META) == 0
    enrol_with(open_store(NO_SEALING), "bob", {"display_name": "Bob Vantrellis"})
    assert metadata_traces(open_store.raw_bytes(), {"n": "Bob Vantrellis"}) == 1  # can fail


def test_sealed_metadata_pages_as_plain_metadata_does(open_store: StoreUnderTest) -> None:
    """A listing's byte budget counts metadata as text, sealed or not (Redis counts in Lua)."""
    store = open_store(AesGcmSealer([KEY]))
    people = {"a": {"k": "x" * 40}, "b": {"k": "y" * 50, "j": "z"}, "c": {"k": "w"}}
    for subject_id, metadata in people.items():
        enrol_with(store, subject_id, metadata)
    sizes = [listing_bytes(s, m) for s, m in people.items()]
    listed = partial(store.list_subjects, "bank", limit=10)
    assert [s.subject_id for s in listed(max_bytes=sizes[0] + sizes[1] - 1)] == ["a", "b"]
    assert [s.subject_id for s in listed(max_bytes=sizes[0] + sizes[1])] == ["a", "b", "c"]


def move_metadata(open_store: StoreUnderTest, source: str, target: str) -> None:
    """Copy ``source``'s stored metadata onto ``target``, behind the store's back."""
    if open_store.kind == "sqlite":
        with sqlite3.connect(open_store.path) as db:
            db.execute(
                "UPDATE subjects SET metadata=(SELECT metadata FROM subjects WHERE subject_id=?) "
                "WHERE subject_id=?",
                (source, target),
            )
        return
    keys = RedisTemplateStore(open_store.redis_url)
    try:
        with redis.Redis.from_url(open_store.redis_url) as client:
            value = client.hget(keys._subject_key("bank", source), "m:display_name")
            assert isinstance(value, bytes)
            client.hset(keys._subject_key("bank", target), "m:display_name", value)
    finally:
        keys.close()


def test_metadata_moved_onto_another_subject_is_refused(open_store: StoreUnderTest) -> None:
    store = open_store(AesGcmSealer([KEY]))
    enrol_with(store, "alice", ALICE_META)
    enrol_with(store, "mallory", {"display_name": "Mallory"})
    enrol_with(store, "zed", {"display_name": "Zed"})
    move_metadata(open_store, "alice", "mallory")  # mallory's record would name alice
    with pytest.raises(MetadataUnreadable, match=r"'mallory''s metadata failed its integrity"):
        store.get_subject("bank", "mallory")
    with pytest.raises(MetadataUnreadable):  # nor written over as if it were hers
        enrol_with(store, "mallory", {"branch": "x"})
    # A listing shows her without metadata, and says why, so paging goes on past her (and
    # an administrator finds whom to delete).
    admin = SubjectAdministration(store, page_bytes=1 << 20)
    token, pages = "", []
    while True:
        page = admin.list("bank", 1, token, "")
        pages += page.subjects
        if not (token := page.next_page_token):
            break
    assert [(r.subject_id, dict(r.metadata)) for r in pages] == [
        ("alice", ALICE_META),
        ("mallory", {}),
        ("zed", {"display_name": "Zed"}),
    ]
    assert "'mallory''s metadata failed its integrity" in pages[1].unreadable_metadata
    assert not pages[0].unreadable_metadata and not pages[2].unreadable_metadata
    assert store.get_subject("bank", "alice").metadata == ALICE_META
    report = reseal_templates(store)  # mallory's template opens, her metadata does not
    assert report.sealed["face"] == 2 and report.unreadable_metadata == {("bank", "mallory")}
    assert report.unreadable == 0
    assert store.delete_subject("bank", "mallory") == 1  # deleting it still works
    with pytest.raises(TemplateUnreadable, match="holds no template key"):
        open_store(NO_SEALING).get_subject("bank", "alice")


def test_plain_metadata_is_read_and_sealed_by_the_next_write(open_store: StoreUnderTest) -> None:
    """Metadata stored before the deployment had keys (or by an older replica) is read as it
    is, unlike a plain template, and sealed by the subject's next write."""
    plain = open_store(NO_SEALING)
    enrol_with(plain, "alice", ALICE_META)
    enrol_with(plain, "bob", {"display_name": "Bob Vantrellis"})
    keyed = open_store(AesGcmSealer([KEY]))
    assert keyed.get_subject("bank", "alice").metadata == ALICE_META
    assert keyed.list_subjects("bank", limit=1)[0].metadata == ALICE_META
    rng = np.random.default_rng(14)
    keyed.save(  # a voice enrolment writes the subject (and seals its metadata)
        TemplateWrite("bank", "alice", "voice", "m", unit(rng, 1, 128), {"phone": "+1 555 0100"})
    )
    if open_store.kind == "sqlite":
        cast(SqliteTemplateStore, keyed).erase_replaced()
    assert metadata_traces(open_store.raw_bytes(), {**ALICE_META, "p": "+1 555 0100"}) == 0
    assert metadata_traces(open_store.raw_bytes(), {"n": "Bob Vantrellis"}) == 1  # not written
    assert keyed.get_subject("bank", "alice").metadata == {**ALICE_META, "phone": "+1 555 0100"}


def test_resealing_seals_plain_metadata_and_rotates_its_key(open_store: StoreUnderTest) -> None:
    enrol_with(open_store(NO_SEALING), "alice", ALICE_META)
    reseal_templates(open_store(AesGcmSealer([KEY], allow_unsealed=True)))
    if open_store.kind == "sqlite":
        cast(SqliteTemplateStore, open_store.opened[-1]).erase_replaced()
    assert open_store(AesGcmSealer([KEY])).get_subject("bank", "alice").metadata == ALICE_META
    assert metadata_traces(open_store.raw_bytes(), ALICE_META) == 0
    reseal_templates(open_store(AesGcmSealer([OTHER_KEY, KEY])))
    assert open_store(AesGcmSealer([OTHER_KEY])).get_subject("bank", "alice").metadata == ALICE_META


def test_a_redis_subject_with_many_plain_metadata_entries_is_sealed_in_one_write(
    redis_url: str,
) -> None:
    """A subject stored by a version before the entry limit may hold thousands of entries:
    sealing them all is one script that sets each (no argument list unpacked at once)."""
    store = RedisTemplateStore(redis_url, sealer=AesGcmSealer([KEY]))
    try:
        enrol_with(store, "alice", {"k0": "v0"})
        with redis.Redis.from_url(redis_url) as client:
            plain = {f"m:k{i}": f"v{i}" for i in range(1, 6000)}
            client.hset(store._subject_key("bank", "alice"), mapping=plain)
        enrol_with(store, "alice", {})
        metadata = store.get_subject("bank", "alice").metadata
        assert len(metadata) == 6000 and metadata["k5999"] == "v5999"
        assert b"v5999" not in redis_values(redis_url)
    finally:
        store.close()
