"""The kernel stage: trees, series, patching, kconfig, make and builds."""
