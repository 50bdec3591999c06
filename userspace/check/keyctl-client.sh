#!/bin/bash
# keyutils' own client on the kernel under test (host side of the guest). `keyctl
# watch_session` watches a fresh session keyring while the key operations below run, and
# each record they must cause is checked off in keyctl's notification log, whose lines are
# the ones keyutils' tests/toolbox.inc.sh check_notify compares ("<key> link <key>"). KTAP.
set -u
. "$(dirname "$0")/lib.sh"
if [ "${1:-}" != --inside ]; then
	echo "KTAP version 1"
	need_keyctl
	# The check's kernels are built with key notifications: a kernel that says it has
	# none has lost them, which is a failure, not a missing client.
	if ! keyctl supports notify >/dev/null 2>&1; then
		echo "1..1"
		echo "# keyctl supports notify: the kernel under test says it cannot watch keys"
		echo "not ok 1 supports_notify"
		exit 1
	fi
	dir=$(mktemp -d)
	exec keyctl watch_session -n wb-client "$dir/watch.log" "$dir/gc.log" 9 \
		bash "$0" --inside "$dir"
fi
dir=$2
log=$dir/watch.log
n=0
failed=0
echo "1..12"

# mark: the log's length before the operation under test (every record posted so far
# is in it first).
mark() {
	keyctl watch_sync 9 2>/dev/null
	before=$(wc -l < "$log")
}

# check NAME EXPECTED: the operation since the last mark posted the EXPECTED record
# exactly once (a record missing, or posted twice, fails; records the key GC posts on its
# own time may come beside it).
check() {
	n=$((n + 1))
	keyctl watch_sync 9 2>/dev/null
	new=$(tail -n +$((before + 1)) "$log")
	count=$(printf '%s\n' "$new" | grep -cxF -- "$2")
	if [ "$count" = 1 ]; then
		echo "ok $n $1"
	else
		echo "# $1: expected \"$2\" once, got it $count times in the new lines:"
		printf '%s\n' "$new" | head -5 | sed 's/^/#   /'
		echo "not ok $n $1"
		failed=1
	fi
}

session=$(keyctl id @s)
mark
key=$(keyctl add user wb-key one @s)
check add_links_to_session "$session link $key"
keyctl watch_add 9 "$key"
mark
keyctl update "$key" two
check update "$key upd"
mark
ring=$(keyctl newring wb-ring @s)
check newring_links_to_session "$session link $ring"
keyctl watch_add 9 "$ring"
mark
keyctl link "$key" "$ring"
check link "$ring link $key"
mark
keyctl unlink "$key" "$ring" >/dev/null
check unlink "$ring unlk $key"
mark
keyctl setperm "$key" 0x3f3f0000
check setperm "$key attr"
mark
keyctl timeout "$key" 600
check timeout "$key attr"
mark
keyctl revoke "$key"
check revoke "$key rev"
mark
other=$(keyctl add user wb-other x "$ring")
check add_to_ring "$ring link $other"
keyctl watch_add 9 "$other"
mark
keyctl invalidate "$other"
check invalidate "$other inv"
keyctl add user wb-third x "$ring" >/dev/null
mark
keyctl clear "$ring"
check clear "$ring clr"
mark
keyctl unlink "$ring" @s >/dev/null
check unlink_from_session "$session unlk $ring"
exit $failed
