#!/bin/bash
# The kernel tree's own sample client, samples/watch_queue/watch_test.c, built from the tree
# under test (watchbench.guest.clients) and run here (host side of the guest): it watches the
# session and user keyrings, and the keyring changes below must each show as its
# "KEY <id> change=<n>[<name>]" line. KTAP.
#   watch-test.sh WATCH_TEST_BINARY
set -u
. "$(dirname "$0")/lib.sh"
[ "${2:-}" = --inside ] || echo "KTAP version 1"  # once: the script runs itself again inside
bin=${1:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "1..0 # SKIP no watch_test binary at '$bin'"
	exit 0
fi
need_keyctl
if [ "${2:-}" != --inside ]; then
	exec keyctl session wb-sample bash "$0" "$bin" --inside
fi
out=$(mktemp)
"$bin" > "$out" 2>&1 &
pid=$!
session=$(keyctl id @s)
s=$(printf '%08x' "$session")
setattrs() { grep -c "^KEY $s change=7\\[" "$out"; }
# Until the sample has its watch: a setattr on the session keyring it can see. A sample
# that exits (its watch refused) ends the wait: its output says why.
for _ in $(seq 100); do
	keyctl setperm @s 0x3f3f0000
	[ "$(setattrs)" -ge 1 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
sleep 0.5  # setattrs still queued from that loop arrive before the count is taken
seen=$(setattrs)
key=$(keyctl add user wb-sample-key v @s)
ring=$(keyctl newring wb-sample-ring @s)
keyctl unlink "$key" @s >/dev/null
keyctl clear @s
keyctl setperm @s 0x3f3f0000
# The last one in: its record follows all the others.
for _ in $(seq 100); do
	[ "$(setattrs)" -gt "$seen" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
expect=("linked:KEY $s change=2\\[linked\\] aux=$key\$"
	"newring_linked:KEY $s change=2\\[linked\\] aux=$ring\$"
	"unlinked:KEY $s change=3\\[unlinked\\] aux=$key\$"
	"cleared:KEY $s change=4\\[cleared\\]")
echo "1..$(( ${#expect[@]} + 2 ))"
n=0
failed=0
for item in "${expect[@]}"; do
	n=$((n + 1))
	name=${item%%:*}
	if grep -q "^${item#*:}" "$out"; then
		echo "ok $n $name"
	else
		echo "# $name: no line matching \"${item#*:}\" in watch_test's output"
		failed=1
		echo "not ok $n $name"
	fi
done
# the setattr made after the clear: a line of its own after the cleared one
n=$((n + 1))
cleared=$(grep -n "^KEY $s change=4\\[cleared\\]" "$out" | head -1 | cut -d: -f1)
if [ -n "$cleared" ] && tail -n +"$cleared" "$out" | grep -q "^KEY $s change=7\\[setattr\\]"; then
	echo "ok $n setattr_after_clear"
else
	echo "# setattr_after_clear: no setattr record after the cleared one in watch_test's output"
	echo "not ok $n setattr_after_clear"
	failed=1
fi
n=$((n + 1))
bad=$(grep -v '^KEY \|^NOTIFY\[\|^read() = ' "$out" | head -5)
if [ -z "$bad" ]; then
	echo "ok $n no_errors # $(grep -c '^KEY ' "$out") key records"
else
	printf '%s\n' "$bad" | sed 's/^/# unexpected: /'
	echo "not ok $n no_errors"
	failed=1
fi
exit $failed
