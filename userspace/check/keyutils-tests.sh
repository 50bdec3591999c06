#!/bin/bash
# keyutils' own test suite on the kernel under test (host side of the guest), from Debian's
# keyutils source package (downloaded and pinned by watchbench.guest.clients, never kept in
# this repository). Its tests/prepare.inc.sh runs each test under `keyctl watch_session`, and
# check_notify (tests/toolbox.inc.sh) checks off every key and keyring change the test makes
# against the notification log. KTAP, one test per test directory.
#   keyutils-tests.sh TESTS_DIR TEST...   (TEST: e.g. keyctl/link/valid)
set -u
. "$(dirname "$0")/lib.sh"
echo "KTAP version 1"
src=${1:-}
shift || true
if [ -z "$src" ] || [ ! -f "$src/prepare.inc.sh" ]; then
	echo "1..0 # SKIP no keyutils test suite at '$src'"
	exit 0
fi
need_keyctl
# The source is read-only here (the host root is shared read-only); the tests write their
# logs beside themselves. Only the shared includes and the tests asked for are copied: the
# whole suite is some 200 files, each a slow round trip over 9p in the debug guest.
work=$(mktemp -d)
mkdir "$work/tests"
cp "$src"/*.sh "$work/tests/"
for test in "$@"; do
	if [ -d "$src/$test" ]; then
		mkdir -p "$work/tests/$test"
		cp -r "$src/$test/." "$work/tests/$test/"
	fi
done
echo "# keyutils $(keyctl --version | cut -d' ' -f3), tests from $src"
echo "1..$#"
n=0
failed=0
for test in "$@"; do
	n=$((n + 1))
	dir=$work/tests/$test
	if [ ! -f "$dir/runtest.sh" ]; then
		echo "# $test: no such test in $src"
		echo "not ok $n $test"
		failed=1
		continue
	fi
	start=$(date +%s)
	(cd "$dir" && TEST=$test bash ./runtest.sh) > "$dir/stdout" 2>&1
	rc=$?
	took=$(( $(date +%s) - start ))
	notes=$(grep -c '^[0-9]' "$dir/watch.out" 2>/dev/null)
	passed=0
	[ $rc = 0 ] && grep -q "FINISHED TEST: PASS" "$dir/test.out" && passed=1
	if [ $passed = 1 ] && [ "${notes:-0}" -gt 0 ]; then
		echo "ok $n $test # $notes notifications checked in ${took} s"
	elif [ $passed = 1 ]; then
		# prepare.inc.sh runs a test unwatched when keyctl cannot watch: check_notify then
		# checks nothing, and a pass would prove nothing about notifications.
		echo "# $test: passed, but its watch log holds no notification (was it watched?)"
		echo "not ok $n $test"
		failed=1
	else
		echo "# $test: exit $rc after ${took} s; the end of its test.out and watch.out:"
		tail -n 15 "$dir/test.out" 2>/dev/null | sed 's/^/#   /'
		tail -n 5 "$dir/watch.out" 2>/dev/null | sed 's/^/#   watch: /'
		echo "not ok $n $test"
		failed=1
	fi
done
exit $failed
