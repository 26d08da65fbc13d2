"""Reader and writer of the idx format of MNIST / Fashion-MNIST (plain or gzip-compressed).

Format (big-endian): two zero bytes, a type code, the number of dimensions ``n``, then ``n``
uint32 sizes, then the data in C order. Hand-written with numpy (a dozen lines) so that no
heavy dependency (torchvision, tensorflow) is needed to read the files.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError

__all__ = ["IDX_TYPES", "read_idx", "write_idx"]

# type code -> big-endian numpy dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read idx file {path}: {err.strerror or err}") from None
    if raw[:2] == _GZIP_MAGIC:  # decide by content, not by the file name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"idx file {path} is a corrupt gzip stream: {err}") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (gzip detected from its content) into a native-endian numpy array.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The array with the shape of the header (e.g. ``[60000, 28, 28]`` uint8).

    Raises:
        DatasetError: bad magic, unknown type code, or a payload shorter or longer than the
            header's dimensions say.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"idx file {path} is truncated: {len(raw)} bytes, no header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DatasetError(
            f"idx file {path} has bad magic {raw[:4].hex()}; expected 0000<type><ndim> with type "
            f"in {[hex(t) for t in IDX_TYPES]}"
        )
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"idx file {path} is truncated inside its header")
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise DatasetError(
            f"idx file {path} is {what}: header dims {list(dims)} need {expected} data bytes, "
            f"found {got}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an idx file (gzip-compressed when ``path`` ends in ``.gz``).

    Supported dtypes: uint8, int8, int16, int32, float32, float64. Used by tests and to export
    subsets in the standard format.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise DatasetError(
            f"cannot write dtype {array.dtype} to idx; use one of {[str(d) for d in codes]}"
        )
    if array.ndim > 255:
        raise DatasetError(f"idx supports at most 255 dimensions, got {array.ndim}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
