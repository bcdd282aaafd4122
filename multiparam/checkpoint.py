"""Checkpoint files: safetensors, one file or a Hugging Face sharded set.

Reading starts from the headers alone.  :func:`open_checkpoint` takes a
``.safetensors`` file, a ``model.safetensors.index.json`` (Hugging Face's
sharded layout) or a folder holding either, and checks every header before
any tensor byte is read: the header length against the file size, each
entry's dtype, shape and byte range, no overlaps or gaps, every shard the
index names present and holding the tensors the index says.  A hostile or
damaged file is refused in constant memory and time.  Tensors are then
memory-mapped one at a time (:meth:`Checkpoint.array`), so a file larger than
free memory streams.

Writing (:func:`write_checkpoint`) streams each array's bytes straight to
disk (no copy of the model in memory), into a temporary file beside the
target that is flushed, fsynced and renamed over it: a crash mid-write
leaves the old file intact.  With ``max_shard_size`` it writes Hugging
Face's layout: ``model-00001-of-00003.safetensors`` ... and the index.

The safetensors format (from its specification): 8 bytes little-endian
header length N, N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the
data; offsets are relative to the end of the header, and the data is
covered exactly, without holes.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
import functools
import json
import math
import mmap
import os
import re
import stat
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

import numpy as np

from . import dtypes, fastcopy, threads
from .errors import DtypeError, MultiparamError

#: Hugging Face's names for a single file and for a sharded set's index
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
#: a header larger than this is refused before it is read (the largest real
#: headers, of models with ~10^5 tensors, are a few MB)
MAX_HEADER_BYTES = 100 * 2 ** 20
#: headers are padded with spaces to this alignment (as safetensors does)
HEADER_ALIGN = 8


class FileFormatError(MultiparamError, ValueError):
    """A file that is not a readable safetensors checkpoint, is damaged, or
    does not match its index or its integrity metadata."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: its file, dtype, shape and byte range."""

    name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    path: Path
    offset: int        # absolute byte offset of the data in ``path``
    nbytes: int


def _regular_file(path: Path, what: str = "checkpoint") -> os.stat_result:
    """``path``'s stat, refusing at once what cannot be a checkpoint file
    (a FIFO would block a reader for ever)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path} is a folder, not a {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(f"{path} is not a regular file (a FIFO, socket or device); "
                              f"a {what} must be a file")
    return st


def read_header(path: Path) -> Tuple[Dict[str, TensorEntry], Dict[str, str], int]:
    """Validate one safetensors file from its header alone: ``(entries,
    metadata, data start)``.  Raises :class:`FileFormatError`."""
    size = _regular_file(path).st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FileFormatError(f"{path} is too short to be a safetensors file ({size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise FileFormatError(f"{path} is not a safetensors file: its header claims {length} bytes "
                                  f"in a file of {size}")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FileFormatError(f"{path} is not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise FileFormatError(f"{path}: __metadata__ must map strings to strings")
    start = 8 + length
    data_size = size - start
    entries: Dict[str, TensorEntry] = {}
    spans = []
    for name, info in header.items():
        entries[name] = entry = _entry(path, name, info, start, data_size)
        spans.append((entry.offset - start, entry.offset - start + entry.nbytes, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            problem = "overlaps the tensor before it" if begin < cursor else "leaves a gap before it"
            raise FileFormatError(f"{path}: tensor {name!r} {problem} (bytes {begin}-{end})")
        cursor = end
    if cursor != data_size:
        raise FileFormatError(f"{path}: the tensors cover {cursor} of {data_size} data bytes "
                              "(truncated, or trailing bytes)")
    return entries, metadata, start


def _entry(path: Path, name: str, info, start: int, data_size: int) -> TensorEntry:
    """One header entry, checked: a known dtype, a shape of non-negative
    ints, and a byte range inside the data that fits the shape exactly."""
    if not isinstance(info, dict):
        raise FileFormatError(f"{path}: header entry {name!r} is not an object")
    try:
        dt = dtypes.from_safetensors(info.get("dtype"))
    except DtypeError as exc:
        raise FileFormatError(f"{path}: tensor {name!r}: {exc}") from None
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise FileFormatError(f"{path}: tensor {name!r} has a malformed shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise FileFormatError(f"{path}: tensor {name!r} has byte range {offsets!r} outside the "
                              f"{data_size} data bytes")
    nbytes = math.prod(shape) * dt.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise FileFormatError(f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype "
                              f"{dtypes.name(dt)} needs {nbytes} bytes, its range holds "
                              f"{offsets[1] - offsets[0]}")
    return TensorEntry(name, dt, tuple(shape), path, start + offsets[0], nbytes)


T = TypeVar("T")
#: checksums are spread over the read workers in batches of at least this
#: many bytes (a large tensor alone)
_PARALLEL_READ = 8 << 20


def _read_pool() -> ThreadPoolExecutor:
    return threads.pool("read", threads.cores())


def _changed_since_opened(path: Path, name: Optional[str] = None) -> FileFormatError:
    """The error for a file that no longer holds what its header promised
    when it was opened (rewritten in place, as safetensors' ``save_file``
    does; multiparam's save renames instead)."""
    where = f"ended before tensor {name!r}" if name is not None else "is shorter than when it was opened"
    return FileFormatError(f"{path} {where}; was it changed after it was opened?")


def _map_file(path: Path, size: int) -> mmap.mmap:
    """``path`` mapped read-only, checked to still hold the ``size`` bytes
    its header promised when it was opened."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size < size:
            raise _changed_since_opened(path)
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)    # the mapping keeps the file open


#: a read (a copy, a checksum) drops the file's pages it read in spans of
#: at least this many bytes, so a load's resident memory stays about this
#: much, not the file read so far.  One call per tensor cost a 1 GiB load
#: of 8 MiB tensors ~6 ms here (the kernel's page-table work, per call);
#: one per 64 MiB, about nothing.
DROP_SPAN = 64 << 20

#: a file smaller than this many spans is dropped in spans of this part of
#: it (at least ``MIN_DROP_SPAN``): 16 calls cost nothing either, and a
#: 100 MB ResNet-50 then holds 6 MiB of its file, not 64 (Keras' own
#: ``load_weights`` holds about one tensor)
DROP_PARTS = 16
MIN_DROP_SPAN = 4 << 20


def _unmap_pages(mapped: mmap.mmap, start: int, stop: int) -> None:
    """Drop the pages of ``mapped[start:stop]`` from this process's address
    space (the page cache keeps them; a later touch maps them again)."""
    page = mmap.PAGESIZE
    start = start // page * page
    if stop > start and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _merged(spans: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """``spans`` (start, stop) sorted, the touching and overlapping ones joined."""
    out: List[Tuple[int, int]] = []
    for start, stop in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def _batches(names: List[str], sizes: List[int], least: int) -> List[List[str]]:
    """``names`` in order, cut into runs of at least ``least`` bytes each (a
    large tensor alone), so a worker pool's cost per task is paid per few
    MiB, never per tiny tensor."""
    batches: List[List[str]] = []
    held = least
    for name, size in zip(names, sizes):
        if held >= least:
            batches.append([])
            held = 0
        batches[-1].append(name)
        held += size
    return batches


class Checkpoint:
    """A checkpoint opened and validated from its headers: one safetensors
    file or a sharded set.  Nothing but headers has been read.

    ``entries`` maps every tensor name to its :class:`TensorEntry`;
    ``metadata`` is the file's ``__metadata__`` (a sharded set: the first
    shard's, plus the index's ``metadata`` under ``index.*`` keys;
    ``file_metadata`` has each shard's own);
    ``files`` are the safetensors files, in order."""

    def __init__(self, path: Path, files: List[Path], entries: Dict[str, TensorEntry],
                 metadata: Dict[str, str], index: Optional[Path] = None,
                 file_metadata: Optional[Dict[Path, Dict[str, str]]] = None):
        self.path = path
        self.files = files
        #: each file's own ``__metadata__``
        self.file_metadata = file_metadata or {files[0]: metadata}
        self.entries = entries
        self.metadata = metadata
        self.index = index
        # each file mapped once, at its first read (read_into, map_tensors)
        self._mapped: Dict[Path, mmap.mmap] = {}
        # each file's spans read and not yet dropped (see _read_from); reads
        # run on several threads at once
        self._read: Dict[Path, List[Tuple[int, int]]] = {}
        self._read_bytes: Dict[Path, int] = {}
        self._drop_spans: Dict[Path, int] = {}    # each file's span, at its first read
        self._read_lock = threading.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def keys(self) -> List[str]:
        return list(self.entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())

    def array(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a read-only NumPy array mapped from the file
        (no copy; pages are read as they are touched)."""
        e = self.entries[name]
        if e.nbytes == 0:
            empty = np.empty(e.shape, e.dtype)
            empty.flags.writeable = False
            return empty
        # a mapping of this tensor's pages only, unmapped when the array
        # goes: one system call (np.memmap's checks and path resolution
        # took ~90 us per tensor, most of a small tensor's checked load)
        start = e.offset - e.offset % mmap.ALLOCATIONGRANULARITY
        fd = os.open(e.path, os.O_RDONLY)
        try:
            # checked as read_into checks: mapping past the end would
            # refuse too, but without saying what happened to the file
            if os.fstat(fd).st_size < e.offset + e.nbytes:
                raise _changed_since_opened(e.path, name)
            mapped = mmap.mmap(fd, e.offset + e.nbytes - start, access=mmap.ACCESS_READ, offset=start)
        finally:
            os.close(fd)    # the mapping keeps the file open
        raw = np.frombuffer(mapped, np.uint8, e.nbytes, e.offset - start)
        return raw.view(e.dtype).reshape(e.shape)

    def read_into(self, name: str, out: np.ndarray) -> None:
        """Read tensor ``name`` into ``out`` (C-contiguous, of its dtype and
        shape): one copy from the file's memory map, with no buffer."""
        e = self.entries[name]
        if out.nbytes != e.nbytes or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"cannot read {name!r} ({e.nbytes} bytes) into a "
                             f"{'non-contiguous ' if not out.flags.c_contiguous else ''}array of {out.nbytes} bytes")
        if not e.nbytes:
            return
        # copied from a mapping of the file, as safetensors' own loader reads
        # it: measured 15% faster here than the kernel's copy of os.preadv
        # (median of 6 fresh processes each, alternately: 0.085 against
        # 0.100 s per GiB)
        # a large tensor is copied on every core, by the framework's own
        # kernel when one is imported (faster than NumPy's here)
        self._on_mapping(name, e, functools.partial(fastcopy.copy_into, out.reshape(-1).view(np.uint8)))

    def _on_mapping(self, name: str, e: TensorEntry, fn: Callable[[np.ndarray], T]) -> T:
        """``fn(bytes)`` of tensor ``name``'s bytes on the file's one mapping
        (no copy; mapped at the first read), its pages then dropped in
        spans (:meth:`_read_from`): what every read of a whole tensor
        (:meth:`read_into`, :meth:`with_tensor`) does around its own work."""
        mapped = self._mapped.get(e.path)
        if mapped is None:
            mapped = self._mapped.setdefault(e.path, _map_file(e.path, self._file_size(e.path)))
        elif mapped.size() < e.offset + e.nbytes:
            # the file shrank under its mapping: touching the lost pages
            # would kill the process with SIGBUS
            raise _changed_since_opened(e.path, name)
        raw = np.frombuffer(mapped, np.uint8, e.nbytes, e.offset)
        try:
            return fn(raw)
        finally:
            del raw
            self._read_from(e.path, mapped, e.offset, e.offset + e.nbytes)

    def _read_from(self, path: Path, mapped: mmap.mmap, start: int, stop: int) -> None:
        # drop the pages of every span read so far once they add up to a
        # span (DROP_SPAN, a sixteenth of a smaller file), so the mapping
        # holds about one span and the tensors in flight, not the file
        # read so far.  A page another thread still reads may go too
        # (spans share their edge pages): the mapping is read-only, and its
        # next touch maps the same bytes again.
        with self._read_lock:
            spans = self._read.setdefault(path, [])
            spans.append((start, stop))
            held = self._read_bytes[path] = self._read_bytes.get(path, 0) + stop - start
            span = self._drop_spans.get(path)
            if span is None:
                span = self._drop_spans[path] = min(DROP_SPAN, max(MIN_DROP_SPAN, mapped.size() // DROP_PARTS))
            if held < span:
                return
            self._read[path], self._read_bytes[path] = [], 0
        for lo, hi in _merged(spans):
            _unmap_pages(mapped, lo, hi)

    def _file_size(self, path: Path) -> int:
        """The bytes ``path``'s header covers (header and data)."""
        return max(e.offset + e.nbytes for e in self.entries.values() if e.path == path)

    def map_tensors(self, fn: Callable[[np.ndarray], T], names: Iterable[str]) -> Dict[str, T]:
        """``{name: fn(array)}`` for every tensor in ``names``: ``array`` is
        read-only, on the file's mapping, and is not to be kept once ``fn``
        returns (its pages are dropped in spans, as :meth:`read_into`
        drops them, so the mapping holds about one span: ``DROP_SPAN``,
        a sixteenth of a smaller file).

        The tensors are spread over the read workers, largest first and the
        small ones in batches, so a ``fn`` that releases the GIL (a checksum)
        runs on every core: a verified load's checksum pass, made before its
        first write, then costs the cores' rate instead of one core's.  One
        mapping of the file serves them all (a mapping per tensor cost a
        checksum pass over 1 GiB of 8 MiB tensors 41.5 ms here, against
        37.1 ms)."""
        by_size = sorted(names, key=lambda n: -self.entries[n].nbytes)
        batches = _batches(by_size, [self.entries[n].nbytes for n in by_size], _PARALLEL_READ)

        def run(batch: List[str]) -> List[T]:
            return [self.with_tensor(n, fn) for n in batch]

        if len(batches) <= 1:
            results = [run(b) for b in batches]
        else:
            results = list(_read_pool().map(run, batches))
        return {n: r for batch, done in zip(batches, results) for n, r in zip(batch, done)}

    def with_tensor(self, name: str, fn: Callable[[np.ndarray], T]) -> T:
        """``fn(array)`` for tensor ``name``, ``array`` read-only on the
        file's one mapping (no copy) and not to be kept once ``fn``
        returns: its pages are dropped in spans, as :meth:`read_into`
        drops them (a cast into a parameter of another dtype reads it so,
        and so does the checksum pass)."""
        e = self.entries[name]
        if not e.nbytes:
            return fn(self.array(name))
        return self._on_mapping(name, e, lambda raw: fn(raw.view(e.dtype).reshape(e.shape)))

    def read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a fresh, writable, 64-byte-aligned array that
        nothing else holds (a framework may keep it as its memory)."""
        e = self.entries[name]
        out = fastcopy.empty_aligned(e.shape, e.dtype)
        self.read_into(name, out)
        return out

    def arrays(self) -> Iterator[Tuple[str, np.ndarray]]:
        """Every tensor, one at a time, in file order."""
        for name in self.entries:
            yield name, self.array(name)

    def __repr__(self) -> str:
        return (f"Checkpoint({str(self.path)!r}, {len(self.entries)} tensors in {len(self.files)} "
                f"file(s), {self.nbytes} bytes)")


def open_checkpoint(path: Union[str, os.PathLike]) -> Checkpoint:
    """Open a safetensors file, a Hugging Face index or a folder holding one
    (``model.safetensors.index.json`` first, then ``model.safetensors``, then
    the folder's only ``.safetensors`` file), validating every header."""
    if str(path) == "":
        raise FileNotFoundError("an empty path names no checkpoint")
    path = Path(path)
    if path.is_dir():
        path = _in_folder(path)
    if path.name.endswith(".index.json"):
        return _open_index(path)
    entries, metadata, _ = read_header(path)
    return Checkpoint(path, [path], entries, metadata)


def _in_folder(folder: Path) -> Path:
    for candidate in (INDEX_FILE, SINGLE_FILE):
        if (folder / candidate).exists():
            return folder / candidate
    found = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("."))
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if len(indexes) == 1:
        return indexes[0]
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"{folder} holds no {INDEX_FILE}, no {SINGLE_FILE}, and "
                            f"{len(found)} other .safetensors files; name the file or the index")


def _open_index(path: Path) -> Checkpoint:
    """A sharded set: the index's ``weight_map`` names each tensor's shard.
    Every shard must exist inside the index's folder and hold exactly the
    tensors the index gives it (with the dtype, shape and bytes of its own
    header)."""
    _regular_file(path, "index")
    if path.stat().st_size > MAX_HEADER_BYTES:
        raise FileFormatError(f"{path} is too large to be a checkpoint index")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FileFormatError(f"{path} is not a JSON checkpoint index") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in weight_map.items()):
        raise FileFormatError(f"{path}: an index needs a 'weight_map' of tensor name -> shard file")
    folder = path.parent
    shards: Dict[str, List[str]] = {}
    for name, shard in weight_map.items():
        if Path(shard).is_absolute() or ".." in Path(shard).parts or "/" in shard or "\\" in shard:
            raise FileFormatError(f"{path}: shard {shard!r} of {name!r} is not a file in the index's folder")
        shards.setdefault(shard, []).append(name)
    entries: Dict[str, TensorEntry] = {}
    metadata: Dict[str, str] = {}
    files = []
    per_file: Dict[Path, Dict[str, str]] = {}
    for shard, names in shards.items():
        file = folder / shard
        if not file.exists():
            raise FileFormatError(f"{path} names shard {shard!r} (holding {names[0]!r}"
                                  f"{' and %d more' % (len(names) - 1) if len(names) > 1 else ''}), "
                                  "which is missing")
        found, meta, _ = read_header(file)
        missing = [n for n in names if n not in found]
        if missing:
            raise FileFormatError(f"{path} says {shard} holds {missing[0]!r}"
                                  f"{' and %d more' % (len(missing) - 1) if len(missing) > 1 else ''}, "
                                  "but that shard does not")
        for n in names:
            entries[n] = found[n]
        if not files:
            metadata.update(meta)
        files.append(file)
        per_file[file] = meta
    extra = index.get("metadata") or {}
    if isinstance(extra, dict):
        metadata.update({f"index.{k}": str(v) for k, v in extra.items()})
    return Checkpoint(path, files, entries, metadata, index=path, file_metadata=per_file)


# -- writing ----------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12,
          "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}


def parse_size(size: Union[int, str]) -> int:
    """Bytes from an int or a Hugging Face size string (``"2GB"``, ``"500MiB"``)."""
    if isinstance(size, int) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"a shard size must be positive, got {size}")
        return size
    m = _SIZE.match(str(size))
    if not m:
        raise ValueError(f"cannot read {size!r} as a size; use bytes or e.g. '2GB', '500MiB'")
    value = int(float(m.group(1)) * _UNITS[(m.group(2) or "B").upper()])
    if value <= 0:
        raise ValueError(f"a shard size must be positive, got {size!r}")
    return value


def _header_bytes(items: List[Tuple[str, np.dtype, tuple, int]], metadata: Dict[str, str]) -> bytes:
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dt, shape, nbytes in items:
        header[name] = {"dtype": dtypes.to_safetensors(dt), "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % HEADER_ALIGN)
    return struct.pack("<Q", len(raw)) + raw


@dataclass
class PlannedTensor:
    """A tensor to write: its name, dtype, shape, and how to get its array
    (called once, while its bytes are written): ``fetch()``, or, where the
    source lends its memory, ``lend(fn)``, which calls ``fn`` on an array
    valid only until ``fn`` returns (a Gluon parameter's own memory)."""

    name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    fetch: Callable[[], np.ndarray]
    lend: Optional[Callable[[Callable[[np.ndarray], Any]], Any]] = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


#: temporaries a save writes beside its target: ``.multiparam-<pid>-<name>.<random>.tmp``
_TEMP_PREFIX = ".multiparam-"
_TEMP_NAME = re.compile(r"^\.multiparam-(\d+)-.+\.tmp$")


def _temp_beside(target: Path) -> Path:
    """A temporary file beside ``target``, named with this process's id, so
    a later save can tell a killed writer's leftovers from a live one's."""
    fd, tmp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-{target.name}.", suffix=".tmp",
                               dir=str(target.parent))
    os.close(fd)
    return Path(tmp)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # alive, someone else's
        return True
    return True


def remove_stale_temporaries(folder: Path) -> List[Path]:
    """Remove temporaries that a save killed mid-write left in ``folder``:
    only multiparam's (its prefix), and only those whose writer process is
    gone (a concurrent save's live temporary is kept).  Returns what it
    removed.  Every save calls it for its folder."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_NAME.match(p.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


@dataclass(frozen=True)
class TensorChecksum:
    """A per-tensor checksum a file's metadata carries under ``key``: a JSON
    object name -> ``digest(array)``, a hex string of exactly ``width``
    characters.  The fixed width lets the writer reserve the header first
    and fill the digests in after streaming the tensors: one pass."""

    key: str
    digest: Callable[[np.ndarray], str]
    width: int


def _write_file(tmp: Path, tensors: List[PlannedTensor], metadata: Dict[str, str],
                on_tensor: Optional[Callable[[PlannedTensor, np.ndarray], None]],
                checksum: Optional[TensorChecksum] = None) -> None:
    # widest dtypes first (stable), as safetensors does: every tensor then
    # starts at a multiple of its itemsize, so memory maps of it are aligned
    tensors = sorted(tensors, key=lambda t: -np.dtype(t.dtype).itemsize)
    items = [(t.name, np.dtype(t.dtype), tuple(t.shape), t.nbytes) for t in tensors]
    digests: Dict[str, str] = {}

    def header() -> bytes:
        meta = dict(metadata)
        if checksum is not None:   # placeholders of the digests' width until they are known
            meta[checksum.key] = json.dumps({t.name: digests.get(t.name, "0" * checksum.width)
                                             for t in tensors})
        return _header_bytes(items, meta)

    with open(tmp, "wb") as f:
        reserved = header()
        f.write(reserved)

        def write(t: PlannedTensor, array: np.ndarray) -> None:
            array = np.asarray(array)
            if array.dtype != t.dtype or tuple(array.shape) != tuple(t.shape):
                raise FileFormatError(f"tensor {t.name!r} changed while it was saved "
                                      f"({array.dtype} {array.shape}, planned {t.dtype} {t.shape})")
            array = fastcopy.contiguous(array)    # a transposed read: the fastest kernel here
            if array.nbytes:
                f.write(memoryview(array.reshape(-1).view(np.uint8)))
            if checksum is not None:
                # hashed right after it was written: its bytes are still in cache
                digests[t.name] = checksum.digest(array)
            if on_tensor is not None:
                on_tensor(t, array)

        for t in tensors:
            # one array at a time, gone before the next: where reads copy,
            # one copy at a time; a lent one is only valid inside ``lend``
            if t.lend is not None:
                t.lend(functools.partial(write, t))
            else:
                write(t, t.fetch())
        if checksum is not None:
            final = header()
            assert len(final) == len(reserved), "a digest is not of its declared width"
            f.seek(0)
            f.write(final)
        f.flush()
        os.fsync(f.fileno())


def write_checkpoint(path: Union[str, os.PathLike], tensors: Iterable[PlannedTensor],
                     metadata: Optional[Dict[str, str]] = None,
                     max_shard_size: Union[int, str, None] = None,
                     on_tensor: Optional[Callable[[PlannedTensor, np.ndarray], None]] = None,
                     checksum: Optional[TensorChecksum] = None,
                     ) -> List[Path]:
    """Write ``tensors`` as one safetensors file at ``path``, or, with
    ``max_shard_size``, as Hugging Face's sharded layout in the folder
    ``path`` (created if needed).  Returns the files written (the index
    last).  Every file is written to a temporary name and renamed into
    place once all are complete.  ``on_tensor(t, array)`` sees each array
    as it is written (progress); ``checksum`` adds each file's per-tensor
    digests to that file's metadata, computed as the tensors are written."""
    tensors = list(tensors)
    metadata = dict(metadata or {})
    if str(path) == "":
        raise FileNotFoundError("an empty path names no file to write")
    path = Path(path)
    if max_shard_size is None:
        target = _resolve_target(path)
        return [_commit_files([(target, tensors)], metadata, on_tensor, checksum)[0]]
    limit = parse_size(max_shard_size)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"a sharded checkpoint is a folder; {path} is a file")
    path.mkdir(parents=True, exist_ok=True)
    groups: List[List[PlannedTensor]] = [[]]
    size = 0
    for t in tensors:   # greedy, in order, as save_pretrained does
        if groups[-1] and size + t.nbytes > limit:
            groups.append([])
            size = 0
        groups[-1].append(t)
        size += t.nbytes
    n = len(groups)
    names = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    written = _commit_files([(path / nm, g) for nm, g in zip(names, groups)], metadata, on_tensor,
                            checksum, index=path / INDEX_FILE, index_doc={
                                "metadata": {"total_size": sum(t.nbytes for t in tensors)},
                                "weight_map": {t.name: nm for nm, g in zip(names, groups) for t in g}})
    _remove_stale_shards(path, set(names))
    return written


_SHARD_NAME = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


def _remove_stale_shards(folder: Path, keep: set) -> None:
    """Shards of an earlier save with another shard count, which the new
    index no longer names (``save_pretrained`` removes them too)."""
    for p in folder.iterdir():
        if _SHARD_NAME.match(p.name) and p.name not in keep:
            with contextlib.suppress(OSError):
                p.unlink()


def _resolve_target(path: Path) -> Path:
    """The file a save writes: through a symlink to its target (the link
    stays a link); a folder is an error unless sharding was asked for."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: pass a file name, or max_shard_size= for a "
                                "sharded checkpoint in that folder")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise FileFormatError(f"{path} is not a regular file; refusing to write over it")
    return Path(os.path.realpath(path))


def _commit_files(plan: List[Tuple[Path, List[PlannedTensor]]], metadata: Dict[str, str], on_tensor,
                  checksum: Optional[TensorChecksum], index: Optional[Path] = None,
                  index_doc=None) -> List[Path]:
    """Write every file of ``plan`` (and the index) to temporaries, then
    rename them all into place; on any error remove the temporaries."""
    for folder in {target.parent for target, _ in plan}:
        remove_stale_temporaries(folder)
    temps: List[Tuple[Path, Path]] = []
    try:
        for target, group in plan:
            tmp = _temp_beside(target)
            temps.append((tmp, target))
            _write_file(tmp, group, metadata, on_tensor, checksum)
        if index is not None:
            tmp = _temp_beside(index)
            temps.append((tmp, index))
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(index_doc, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
        for tmp, target in temps:
            _keep_mode(tmp, target)
            os.replace(tmp, target)   # atomic per file on POSIX: readers see old or new
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    return [target for _, target in temps]


def _keep_mode(tmp: Path, target: Path) -> None:
    """A replaced file keeps its permissions; a new one gets the umask's
    (mkstemp creates 0600, which would hide a shared checkpoint)."""
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
