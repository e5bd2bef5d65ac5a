"""The store: run folders (store/folder.py) and the SQLite index of comparisons and runs
(store/index.py), with `runs --check` (store/check.py). Everything the rest of nncompare reads or
writes on disk goes through here."""

from .folder import FINAL_STATUSES, RUN_FILES, TIMING_KEYS, StoredRun, history_csv, load_run, read_history, read_metrics, write_failure, write_run
from .index import DEFAULT_STORE, Store, comparison_lock, is_locked, store_root

__all__ = ["DEFAULT_STORE", "FINAL_STATUSES", "RUN_FILES", "TIMING_KEYS", "Store", "StoredRun", "comparison_lock", "history_csv", "is_locked", "load_run", "read_history", "read_metrics", "store_root", "write_failure", "write_run"]
