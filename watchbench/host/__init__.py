"""The host: the one subprocess seam, git, host packages, progress."""
