"""watchbench: build, boot and benchmark the Linux notification queue under QEMU."""

__version__ = "0.1.0"
