"""REST API, job queue, GPU worker and result storage."""
