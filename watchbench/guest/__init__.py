"""The guest: the initramfs (busybox, init, our programs) and its cpio packing.

init.sh and wb-session.c, beside this file, are copied into it."""
