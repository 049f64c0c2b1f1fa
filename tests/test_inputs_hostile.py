"""Forged image arrays: a header that claims more than the file holds, an .npz that inflates
past the cap, refused before numpy allocates anything."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from audit.data import inputs
from audit.errors import DataError


def test_a_npy_header_claiming_more_than_the_file_holds_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages name files relative to the working folder
    np.save(tmp_path / "ok.npy", np.zeros((5, 1, 4, 4), np.uint8))
    raw = (tmp_path / "ok.npy").read_bytes()
    # the same header length, a shape of 9,999 images the file does not hold
    forged = raw.replace(b"(5, 1, 4, 4)", b"(9999,1,4,4)")
    (tmp_path / "forged.npy").write_bytes(forged)
    with pytest.raises(DataError) as info:
        inputs._read_array(tmp_path / "forged.npy", 5, "eval.csv")
    assert str(info.value) == (
        "forged.npy: its header claims an array of shape (9999, 1, 4, 4) (159,984 bytes) but the "
        f"whole file is {len(forged)} bytes; it is truncated or forged: save the images again "
        "with numpy.save")


def test_an_npz_that_inflates_past_the_cap_is_never_read(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((200, 1, 28, 28), np.uint8))
    monkeypatch.setattr(inputs, "MAX_ARRAY_BYTES", 10_000)
    size = zipfile.ZipFile(path).infolist()[0].file_size
    with pytest.raises(DataError) as info:
        inputs._read_array(path, 200, "eval.csv")
    assert str(info.value) == (f"bomb.npz: the array 'x.npy' inflates to {size:,} bytes, more "
                               "than the 10,000 allowed; split the images into tables of their own")
    monkeypatch.setattr(inputs, "MAX_ARRAY_BYTES", 8 << 30)
    assert inputs._read_array(path, 200, "eval.csv").shape == (200, 1, 28, 28)
