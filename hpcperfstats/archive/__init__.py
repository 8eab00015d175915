"""The raw archive: files per host and day, their index, quarantine, off-site copies."""
