"""Getting samples in: queue drain, archive import, publishing, bounded reading."""
