# Sourced by the check scripts (host side of the guest).

# need_keyctl: a '1..0 # SKIP' plan, and exit 0, when the host has no keyctl: a client
# that cannot be had is a skip with its reason, never a pass.
need_keyctl() {
	command -v keyctl >/dev/null && return 0
	echo "1..0 # SKIP keyctl not installed on the host (Debian package keyutils: ./wb deps)"
	exit 0
}
