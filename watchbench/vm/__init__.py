"""Booting built kernels in QEMU: argv as data, console analysis, accelerator choice."""
