"""Reading the data: tables (CSV/Parquet), and the text columns, image arrays and image files
text and image models read.

* :mod:`~audit.data.tables` -- a :class:`Table`: the features, labels and sensitive columns of one
  file, with the models' inputs; :class:`LabelEncoding` maps labels to class indices.
* :mod:`~audit.data.inputs` -- text columns, image arrays (.npy/.npz) and image files (PNG/JPEG
  named in a column), validated and aligned with the table's rows.
* :mod:`~audit.data.hashing` -- files' SHA-256, read once per process while unchanged.
"""

from __future__ import annotations

from audit.data.hashing import file_sha256
from audit.data.tables import MAX_GROUPS, LabelEncoding, Table, load_table, read_table

__all__ = ["Table", "LabelEncoding", "read_table", "load_table", "file_sha256", "MAX_GROUPS"]
