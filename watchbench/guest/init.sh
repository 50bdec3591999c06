#!/bin/busybox sh
# watchbench guest init (PID 1). Mounts the pseudo filesystems, joins a fresh session
# keyring, runs the commands of /wb/job.sh and reports each one's output and exit code on
# its own serial port (ttyS1), never mixed with kernel messages. Ends with reboot -f
# (QEMU runs with -no-reboot, so that is a power-off).
if [ -z "$WB_SESSION" ]; then
	export WB_SESSION=1
	exec /bin/wb-session /bin/busybox sh /init
fi
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmp /tmp
CHAN=/dev/ttyS1
stty -F $CHAN raw -echo 2>/dev/null
say() { echo "$*" > $CHAN; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

mount_results() {
	mkdir -p /results
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results ||
		say "WB-ERROR cannot mount the results share"
}

# The host side as the host's whole / (read-only): vm.run --host, vm.shell, sandbox off.
mount_host() {
	mkdir -p /host
	if ! mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,ro,msize=512000 hostroot /host; then
		say "WB-ERROR cannot mount the host root share"
		return 1
	fi
	host_pseudo overlay
}

# The host side as a root of its own in guest memory holding only the read-only shares
# job.sh names (view_mount), the links of a merged /usr (view_link) and the copied /etc
# the initramfs carries (view_copy): guest.hostview.
mount_view() {
	mkdir -p /host
	mount -t tmpfs view /host
}
view_mount() {
	mkdir -p "/host$2"
	mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,ro,msize=512000 "$1" "/host$2" ||
		say "WB-ERROR cannot mount the host share $1 at $2"
}
view_link() { ln -s "$2" "/host$1"; }
view_copy() { cp -a "$1" "/host$2" || say "WB-ERROR cannot copy $1 to $2 in the host view"; }

# The host side's /proc, /sys, /dev, /run (the results at /run/wb-results) and /tmp.
# "overlay": /tmp is the host's, read-only, with an overlay whose writes stay in guest
# memory; otherwise /tmp is a directory of the view's own memory root.
host_pseudo() {
	mkdir -p /host/proc /host/sys /host/dev /host/run /host/tmp /host/root
	mount -t proc proc /host/proc
	mount -t sysfs sys /host/sys
	mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
	mount -o bind /dev /host/dev
	mount -t tmpfs run /host/run
	mkdir -p /host/run/wb-results /host/run/wb-tmp /host/run/wb-tmp-upper /host/run/wb-tmp-work
	chmod 1777 /host/run/wb-tmp /host/run/wb-tmp-upper  # the overlay's root takes the upper's mode
	[ -d /results ] && mount -o bind /results /host/run/wb-results
	WB_TMPDIR=/tmp
	[ "$1" = overlay ] || { chmod 1777 /host/tmp; return 0; }
	# /tmp stays the host's (the project, or a CI checkout, may live there) and is writable:
	# an overlay whose writes go to tmpfs and vanish with the guest.
	if ! mount -t overlay overlay -o lowerdir=/host/tmp,upperdir=/host/run/wb-tmp-upper,workdir=/host/run/wb-tmp-work /host/tmp; then
		say "WB-ERROR no overlay on the host side's /tmp (CONFIG_OVERLAY_FS): it is read-only, TMPDIR is /run/wb-tmp"
		WB_TMPDIR=/run/wb-tmp
	fi
}

# wb_run INDEX SIDE ARGV...: SIDE is "guest" (busybox) or "host" (chroot into the host root).
wb_run() {
	idx=$1 side=$2
	shift 2
	say "WB-BEGIN $idx $(uptime_s)"
	if [ "$side" = host ]; then
		set -- chroot /host /usr/bin/env -i PATH="$WB_HOST_PATH" HOME=/root LANG=C.UTF-8 \
			WB_RESULTS=/run/wb-results TMPDIR="$WB_TMPDIR" WB_GUEST=1 \
			/bin/sh -c 'cd "$0" && exec "$@"' "$WB_HOST_CWD" "$@"
	fi
	rm -f /tmp/wb-rc
	{ "$@" 2>&1 </dev/null; echo $? > /tmp/wb-rc; } | while IFS= read -r line || [ -n "$line" ]; do
		echo "O $line"
	done > $CHAN
	say "WB-END $idx $(cat /tmp/wb-rc 2>/dev/null || echo 255) $(uptime_s)"
}

# Power off after saying so; also used by job.sh to stop after a failed required command.
wb_finish() {
	say "WB-DONE $(uptime_s)"
	sync
	reboot -f
}
wb_last_ok() { [ "$(cat /tmp/wb-rc 2>/dev/null)" = 0 ]; }

say "WB-READY $(uname -r) $(uptime_s)"
. /wb/job.sh
wb_finish
