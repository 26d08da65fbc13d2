"""idx reader: round trips on synthetic files (plain and gzip) and malformed files."""

import gzip

import numpy as np
import pytest

from weightscape.data import read_idx, write_idx
from weightscape.errors import DatasetError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((7, 5, 3)) * 50).astype(dtype)
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    b = read_idx(path)
    # exact: the file stores the values bit for bit
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    assert b.dtype.isnative


def test_header_bytes_match_the_format(tmp_path):
    """The MNIST label-file header: 00 00 08 01 then the count as big-endian uint32."""
    path = write_idx(tmp_path / "labels", np.arange(10, dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 10]) and raw[8:] == bytes(range(10))


def test_gzip_detected_by_content_not_name(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    plain = write_idx(tmp_path / "x", a)
    disguised = tmp_path / "y"  # gzip content without a .gz name
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    assert np.array_equal(read_idx(disguised), a)


def _bytes(a):
    return bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.tobytes()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic"),  # unknown type code
        (b"\x00\x00", "truncated"),
        (b"\x00\x00\x08\x03\x00\x00", "header"),
        (_bytes(np.zeros((4, 3), np.uint8))[:-1], "truncated"),
        (_bytes(np.zeros((4, 3), np.uint8)) + b"\x00", "longer"),
        (gzip.compress(_bytes(np.zeros((4, 3), np.uint8)))[:-6], "gzip"),
    ],
)
def test_malformed_files_raise(tmp_path, payload, match):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(DatasetError, match=match):
        read_idx(path)


def test_missing_file_and_bad_dtype(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "absent")
    with pytest.raises(DatasetError, match="dtype"):
        write_idx(tmp_path / "c", np.zeros(3, dtype=np.complex128))
