"""Checkpoint files (multiparam.checkpoint), framework-free: validated from
headers, read as safetensors writes them, written as safetensors reads
them, and every malformed file refused with nothing read past its header."""
import json
import os
import stat
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from multiparam import checkpoint as C

ARRAYS = {
    "embed.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
    "0.bias": np.array([1.5, -2.0], dtype=np.float64),
    "steps": np.array(7, dtype=np.int64),
    "mask": np.array([True, False, True]),
    "empty": np.zeros((0, 3), dtype=np.float16),
}


def planned(arrays):
    return [C.PlannedTensor(k, a.dtype, a.shape, (lambda a=a: a)) for k, a in arrays.items()]


@pytest.fixture
def reference_file(tmp_path):
    """A file written by the safetensors library itself."""
    path = tmp_path / "ref.safetensors"
    save_file(ARRAYS, str(path), metadata={"format": "np"})
    return path


def test_reads_what_safetensors_writes(reference_file):
    ck = C.open_checkpoint(reference_file)
    assert ck.metadata == {"format": "np"}
    assert sorted(ck.keys()) == sorted(ARRAYS)
    for name, want in ARRAYS.items():
        got = ck.array(name)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable


def test_safetensors_reads_what_it_writes(tmp_path):
    path = tmp_path / "ours.safetensors"
    C.write_checkpoint(path, planned(ARRAYS), metadata={"origin": "test"})
    got = load_file(str(path))
    assert sorted(got) == sorted(ARRAYS)
    for name, want in ARRAYS.items():
        np.testing.assert_array_equal(got[name], want)


@pytest.mark.parametrize("limit", [1, "40B", 10 ** 6])
def test_sharded_layout_round_trip(tmp_path, limit):
    folder = tmp_path / "sharded"
    written = C.write_checkpoint(folder, planned(ARRAYS), max_shard_size=limit)
    assert written[-1].name == C.INDEX_FILE
    index = json.loads(written[-1].read_text())
    assert set(index["weight_map"]) == set(ARRAYS)
    assert index["metadata"]["total_size"] == sum(a.nbytes for a in ARRAYS.values())
    merged = {}
    for shard in sorted(set(index["weight_map"].values())):
        merged.update(load_file(str(folder / shard)))
    for name, want in ARRAYS.items():
        np.testing.assert_array_equal(merged[name], want)
    ck = C.open_checkpoint(folder)          # the folder finds its index
    assert ck.index == folder / C.INDEX_FILE
    for name, want in ARRAYS.items():
        np.testing.assert_array_equal(ck.array(name), want)


def test_a_smaller_sharded_save_removes_the_old_shards(tmp_path):
    folder = tmp_path / "sharded"
    C.write_checkpoint(folder, planned(ARRAYS), max_shard_size=1)
    C.write_checkpoint(folder, planned(ARRAYS), max_shard_size=10 ** 6)
    assert sorted(p.name for p in folder.iterdir()) == [
        "model-00001-of-00001.safetensors", C.INDEX_FILE]


@pytest.mark.parametrize("text, expected", [("2GB", 2 * 10 ** 9), ("500MiB", 500 * 2 ** 20),
                                            ("1.5kb", 1500), (64, 64), ("10", 10)])
def test_sizes_read_as_hugging_face_writes_them(text, expected):
    assert C.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["two GB", "-1GB", 0, "5 parsecs"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        C.parse_size(bad)


def _raw_file(path, header: dict, data: bytes, length=None):
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


MALFORMED = {
    "header longer than the file": (dict(a={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}), b"\0" * 4, 2 ** 40),
    "header length 2^64-1": ({}, b"", 2 ** 64 - 1),
    "unknown dtype": (dict(a={"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}), b"\0" * 16, None),
    "negative dim": (dict(a={"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}), b"\0" * 4, None),
    "range past the data": (dict(a={"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}), b"\0" * 4, None),
    "range not the shape's size": (dict(a={"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}), b"\0" * 4, None),
    "overlap": (dict(a={"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     b={"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}), b"\0" * 8, None),
    "gap": (dict(a={"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}), b"\0" * 8, None),
    "trailing bytes": (dict(a={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}), b"\0" * 9, None),
    "metadata not strings": ({"__metadata__": {"ties": 5}}, b"", None),
    "header not an object": ([1, 2], b"", None),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_refused_from_the_header(tmp_path, case):
    header, data, length = MALFORMED[case]
    path = _raw_file(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(C.FileFormatError):
        C.open_checkpoint(path)


def test_not_json_and_too_short(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x02")
    with pytest.raises(C.FileFormatError, match="too short"):
        C.open_checkpoint(short)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]")
    with pytest.raises(C.FileFormatError, match="not JSON"):
        C.open_checkpoint(garbage)


def test_special_files_and_empty_paths_are_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(C.FileFormatError, match="not a regular file"):
        C.open_checkpoint(fifo)        # would block for ever if opened
    with pytest.raises(FileNotFoundError, match="empty path"):
        C.open_checkpoint("")
    with pytest.raises(FileNotFoundError):
        C.open_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        C.open_checkpoint(tmp_path / "empty-folder")


def test_index_naming_a_missing_shard(tmp_path):
    folder = tmp_path / "s"
    C.write_checkpoint(folder, planned(ARRAYS), max_shard_size=1)
    victim = sorted(folder.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(C.FileFormatError, match="missing"):
        C.open_checkpoint(folder)


def test_shard_missing_a_tensor_the_index_lists(tmp_path):
    folder = tmp_path / "s"
    C.write_checkpoint(folder, planned(ARRAYS), max_shard_size=10 ** 6)
    index = json.loads((folder / C.INDEX_FILE).read_text())
    index["weight_map"]["ghost.weight"] = "model-00001-of-00001.safetensors"
    (folder / C.INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(C.FileFormatError, match="ghost.weight"):
        C.open_checkpoint(folder)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/dir.safetensors"])
def test_index_cannot_reach_outside_its_folder(tmp_path, shard):
    index = tmp_path / C.INDEX_FILE
    index.write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(C.FileFormatError, match="not a file in the index's folder"):
        C.open_checkpoint(index)


def test_a_failed_write_leaves_the_old_file_and_no_temporaries(tmp_path):
    path = tmp_path / "w.safetensors"
    C.write_checkpoint(path, planned(ARRAYS))
    before = path.read_bytes()

    def broken():
        raise RuntimeError("disk on fire")

    bad = planned(ARRAYS) + [C.PlannedTensor("late", np.dtype(np.float32), (2,), broken)]
    with pytest.raises(RuntimeError):
        C.write_checkpoint(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_permissions_of_a_replaced_file_are_kept_and_new_files_follow_the_umask(tmp_path):
    path = tmp_path / "w.safetensors"
    C.write_checkpoint(path, planned(ARRAYS))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    C.write_checkpoint(path, planned(ARRAYS))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.safetensors"
    C.write_checkpoint(target, planned({"a": np.ones(2, np.float32)}))
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    C.write_checkpoint(link, planned(ARRAYS))
    assert link.is_symlink()
    assert sorted(load_file(str(target))) == sorted(ARRAYS)


def test_a_folder_is_not_a_file_to_write(tmp_path):
    with pytest.raises(IsADirectoryError, match="max_shard_size"):
        C.write_checkpoint(tmp_path, planned(ARRAYS))


def _dead_pid() -> int:
    """The id of a process that has exited (a killed writer's)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_save_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    dead = tmp_path / f".multiparam-{_dead_pid()}-w.safetensors.abc123.tmp"
    live = tmp_path / f".multiparam-{os.getpid()}-w.safetensors.def456.tmp"   # a save under way here
    other = tmp_path / ".w.safetensors.keepme.tmp"                              # not ours
    for p in (dead, live, other):
        p.write_bytes(b"x" * 1024)
    C.write_checkpoint(tmp_path / "w.safetensors", planned(ARRAYS))
    assert not dead.exists()
    assert live.exists() and other.exists()


#: many tiny tensors (batched per task) beside a few above the batch size
#: (one task each): every tensor's result must come back under its own name
MIXED = {**{f"small.{i}": np.full((3, i + 1), i, dtype=np.float32) for i in range(40)},
         **{f"large.{i}": np.full((C._PARALLEL_READ // 8 + i,), i + 0.5, dtype=np.float64) for i in range(3)},
         "empty": np.zeros((0, 2), dtype=np.int8)}


@pytest.mark.parametrize("names", [sorted(MIXED), ["large.1"], ["small.3", "empty"], []])
def test_map_tensors_gives_each_tensor_its_own_result(tmp_path, names):
    """``map_tensors`` spreads tensors over threads in batches, largest
    first; each name must still get ``fn`` of its own bytes, as safetensors
    itself reads them."""
    import xxhash
    path = tmp_path / "mixed.safetensors"
    save_file(MIXED, str(path))
    truth = load_file(str(path))
    got = C.open_checkpoint(path).map_tensors(lambda a: xxhash.xxh3_64_hexdigest(a.tobytes()), names)
    assert got == {n: xxhash.xxh3_64_hexdigest(truth[n].tobytes()) for n in names}


@pytest.mark.parametrize("name", ["small.0", "small.39", "large.0", "large.2", "empty"])
def test_read_into_copies_each_tensor_as_safetensors_reads_it(tmp_path, name):
    """``read_into`` (what a load streams through, one copy from the file's
    mapping) and ``read`` give safetensors' own bytes."""
    path = tmp_path / "mixed.safetensors"
    save_file(MIXED, str(path))
    want = load_file(str(path))[name]
    ck = C.open_checkpoint(path)
    out = np.full(want.shape, -1, want.dtype)
    ck.read_into(name, out)
    np.testing.assert_array_equal(out, want)
    fresh = ck.read(name)
    np.testing.assert_array_equal(fresh, want)
    assert fresh.flags.writeable and (fresh.size == 0 or fresh.ctypes.data % 64 == 0)


def _copied(ck, name):
    out = np.zeros(MIXED[name].shape, MIXED[name].dtype)
    ck.read_into(name, out)
    return out


#: every way a load reads a tensor's bytes: the copy into a parameter
#: (read_into), the mapped view a layout conversion reads from (array) and
#: the checksum pass (map_tensors)
READS = {
    "read_into": _copied,
    "array": lambda ck, name: np.array(ck.array(name)),
    "map_tensors": lambda ck, name: ck.map_tensors(np.array, [name])[name],
}


@pytest.mark.parametrize("read", READS.values(), ids=list(READS))
def test_a_file_shortened_after_it_was_opened_is_refused(tmp_path, read):
    path = tmp_path / "mixed.safetensors"
    save_file(MIXED, str(path))
    ck = C.open_checkpoint(path)
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(C.FileFormatError, match="changed after it was opened"):
        read(ck, "large.2")


@pytest.mark.parametrize("read", READS.values(), ids=list(READS))
def test_a_file_shortened_while_it_is_read_is_refused_not_a_crash(tmp_path, read):
    """Rewritten in place mid-load (safetensors' ``save_file`` truncates
    the file it writes), the rest of the file is gone from under the
    mapping: the next read raises instead of touching a lost page."""
    path = tmp_path / "mixed.safetensors"
    save_file(MIXED, str(path))
    ck = C.open_checkpoint(path)
    np.testing.assert_array_equal(read(ck, "small.0"), MIXED["small.0"])
    os.truncate(path, 0)
    with pytest.raises(C.FileFormatError, match="changed after it was opened"):
        read(ck, "large.2")


def test_a_refused_read_leaves_its_destination_untouched(tmp_path):
    path = tmp_path / "mixed.safetensors"
    save_file(MIXED, str(path))
    ck = C.open_checkpoint(path)
    os.truncate(path, os.path.getsize(path) // 2)
    out = np.zeros(MIXED["large.0"].shape, MIXED["large.0"].dtype)
    with pytest.raises(C.FileFormatError):
        ck.read_into("large.0", out)
    assert not out.any()


def _resident_file_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


def _read_into_fresh(ck, name):
    e = ck.entries[name]
    out = np.ones(e.shape, e.dtype)    # touched before the read: its pages are not the file's
    ck.read_into(name, out)
    return out


#: the reads of a load that walk the whole file: its copies into the
#: parameters and its checksum pass
WHOLE_FILE_READS = {
    "read_into": _read_into_fresh,
    "map_tensors": lambda ck, name: ck.map_tensors(np.array, [name])[name],
}


def _file_resident_after_each_read(tmp_path, read, tensors: int, floats: int) -> list:
    """A file of ``tensors`` float32 tensors of ``floats`` values each, read
    one tensor at a time with ``read`` (each checked): the KiB of file pages
    resident after each read, beyond those before the first."""
    values = {f"{i}.weight": np.full((floats,), i, np.float32) for i in range(tensors)}
    path = tmp_path / "file.safetensors"
    save_file(values, str(path))
    ck = C.open_checkpoint(path)
    before = _resident_file_kib()
    held = []
    for name, want in values.items():
        np.testing.assert_array_equal(read(ck, name), want)
        held.append(_resident_file_kib() - before)
    return held


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc accounting")
@pytest.mark.parametrize("read", WHOLE_FILE_READS.values(), ids=list(WHOLE_FILE_READS))
def test_reading_every_tensor_keeps_about_one_span_of_the_file_resident(tmp_path, monkeypatch, read):
    """A load copies from a mapping of the file, and its checksum pass
    reads the same mapping; the pages read are unmapped once they add up
    to a span (``DROP_SPAN``, here 8 MiB), so a model larger than free
    memory still loads and the load's resident memory stays about one span
    and a tensor (here: 8 tensors of 4 MiB read, never more than 12 MiB
    resident)."""
    monkeypatch.setattr(C, "DROP_SPAN", 8 << 20)
    held = _file_resident_after_each_read(tmp_path, read, tensors=8, floats=1 << 20)
    assert max(held) < 12 << 10, held
    assert held[-1] < 4 << 10, held      # the last span dropped: 8 tensors are 4 spans


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc accounting")
@pytest.mark.parametrize("read", WHOLE_FILE_READS.values(), ids=list(WHOLE_FILE_READS))
def test_a_smaller_file_is_dropped_in_sixteenths(tmp_path, monkeypatch, read):
    """A file smaller than sixteen spans is dropped in spans of a sixteenth
    of it, so a model of a hundred megabytes does not hold a whole span
    (here: a 32 MiB file of 1 MiB tensors, the smallest span lowered to 1
    MiB; its spans are 2 MiB, never 4 MiB resident)."""
    monkeypatch.setattr(C, "MIN_DROP_SPAN", 1 << 20)
    held = _file_resident_after_each_read(tmp_path, read, tensors=32, floats=1 << 18)
    assert max(held) < 4 << 10, held
