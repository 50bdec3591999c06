"""Multi-stage workflows (ci, bisect, the whole pipeline): they return data, never print."""
