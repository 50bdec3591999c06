#!/bin/sh
# kmemleak around the correctness checks of `inv check` (host side of the guest). KTAP.
#   kmemleak.sh clear  stop the automatic scans, scan, and forget what that scan found
#                      (what boot left behind), so only the checks' own allocations can
#                      be reported afterwards;
#   kmemleak.sh scan   scan twice (an object is reported only once it is 5 s old) and fail
#                      with every unreferenced object kmemleak reports.
K=/sys/kernel/debug/kmemleak
echo "KTAP version 1"
if [ ! -w "$K" ]; then
	echo "1..0 # SKIP no $K: kernel built without CONFIG_DEBUG_KMEMLEAK (the debug fragment has it)"
	exit 0
fi
echo "1..1"
case "$1" in
clear)
	# clear greys only what a scan already reported, and a scan reports only objects
	# older than 5 s: wait, scan, then clear.
	sleep 5
	if echo scan=off > "$K" && echo scan > "$K" && echo clear > "$K"; then
		echo "ok 1 kmemleak_clear"
	else
		echo "not ok 1 kmemleak_clear"
		exit 1
	fi
	;;
scan)
	# A kmemleak that switched itself off (out of memory for its own objects, say) refuses
	# the scan: that is no proof of no leak.
	if ! { echo scan > "$K" && sleep 6 && echo scan > "$K"; } 2>/dev/null; then
		echo "# kmemleak refused a scan: it is disabled (see the console)"
		echo "not ok 1 kmemleak_scan"
		exit 1
	fi
	report=$(cat "$K")
	if [ -z "$report" ]; then
		echo "ok 1 kmemleak_scan # no unreferenced objects"
		exit 0
	fi
	echo "# kmemleak: $(printf '%s\n' "$report" | grep -c '^unreferenced object') unreferenced objects"
	printf '%s\n' "$report" | head -120 | sed 's/^/# /'
	echo "not ok 1 kmemleak_scan"
	exit 1
	;;
*)
	echo "usage: kmemleak.sh clear|scan" >&2
	exit 2
	;;
esac
