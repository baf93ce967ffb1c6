#!/usr/bin/env bash
# hack/setup.sh installs what building and testing Skiff needs on a Debian 12
# (bookworm) machine, and only what is missing: running it twice changes
# nothing the second time. It reaches only Debian's mirrors (apt-get) and the
# Go module proxy (the Go toolchain that go.mod asks for).
#
# Run as root (the Makefile runs it before `make run` and `make test`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---------------------------------------------------------------------------
# Debian packages. One a line, with the reason it is needed.
# Later work extends this list: move an entry from the "coming" block up when
# the code that needs it lands.
# ---------------------------------------------------------------------------
packages=(
	ca-certificates # TLS to Debian's mirrors and the Go module proxy
	git             # version stamping in `make build` (git describe)
	make            # the Makefile is the entry point for build and test
	gcc             # cgo
	libc6-dev       # cgo: C headers and crt files (only a recommendation of gcc)
	iproute2        # `ip netns` for the e2e tests' network namespaces
	runc                        # container runtime for the node agent
	conmon                      # per-container monitor: runs runc create, writes logs, exit codes, attach
	catatonit                   # PID 1 (pause mode) of pods that share a PID namespace
	containernetworking-plugins # CNI plugins for pod networking (/usr/lib/cni)
	busybox-static              # tiny image contents for test images
	nftables                    # `nft`: pod masquerade table (internal/cni); service proxy rules later
	iptables                    # the CNI portmap plugin (hostPorts) runs `iptables` (nf_tables backend)
)

# minGoMinor is the oldest Go 1.x release that understands GOTOOLCHAIN and can
# fetch the release go.mod names by itself.
minGoMinor=21

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# as_root runs a command as root, through sudo when we are not root.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $* (run this script as root)"
	fi
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_updated=false
apt_update_once() {
	if ! $apt_updated; then
		log "apt-get update"
		as_root apt-get update -qq
		apt_updated=true
	fi
}

apt_install() {
	apt_update_once
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Debian packages --------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
	log "installing missing Debian packages: ${missing[*]}"
	apt_install "${missing[@]}"
else
	log "Debian packages present: ${packages[*]}"
fi

# --- Go ---------------------------------------------------------------------
# find_go prints the first go binary found: on PATH, then the places the
# official tarball and Debian's golang-go put it.
find_go() {
	local c
	for c in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
		if [[ -n $c && -x $c ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

# go_minor prints the minor version of a go binary's own release (21 for
# go1.21.5), or 999 for a development build. It runs outside the module and
# with GOTOOLCHAIN=local so that asking does not start a toolchain download.
go_minor() {
	local v
	v=$(cd / && GOTOOLCHAIN=local "$1" version 2>/dev/null) || return 1
	if [[ $v =~ go1\.([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	elif [[ $v == *devel* ]]; then
		echo 999
	else
		return 1
	fi
}

install_debian_go() {
	local codename=""
	if [[ -r /etc/os-release ]]; then
		# shellcheck disable=SC1091
		codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	fi
	if [[ $codename == bookworm ]]; then
		# bookworm's own golang-go is Go 1.19, which cannot fetch newer
		# toolchains; bookworm-backports carries a Go that can.
		local src=/etc/apt/sources.list.d/skiff-bookworm-backports.sources
		if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			log "adding Debian's bookworm-backports suite ($src) for a Go >= 1.$minGoMinor"
			as_root tee "$src" >/dev/null <<-'EOF'
				Types: deb
				URIs: http://deb.debian.org/debian
				Suites: bookworm-backports
				Components: main
				Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
			EOF
			apt_updated=false
		fi
		apt_update_once
		log "apt-get install -t bookworm-backports golang-go"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-t bookworm-backports golang-go
	else
		apt_install golang-go
	fi
}

gobin=$(find_go || true)
minor=""
if [[ -n $gobin ]]; then
	minor=$(go_minor "$gobin" || true)
fi
if [[ -z $gobin ]]; then
	log "go not found; installing Debian's golang-go"
	install_debian_go
elif [[ -z $minor || $minor -lt $minGoMinor ]]; then
	log "$gobin is older than go1.$minGoMinor; installing Debian's golang-go"
	install_debian_go
fi

gobin=$(find_go) || die "go is still not installed"
minor=$(go_minor "$gobin") || die "cannot tell the version of $gobin"
if ((minor < minGoMinor)); then
	die "$gobin is older than go1.$minGoMinor (put a newer go first on PATH)"
fi
case ":$PATH:" in
*":$(dirname "$gobin"):"*) ;;
*) log "note: $(dirname "$gobin") is not on PATH; the Makefile adds /usr/local/go/bin, elsewhere add it yourself" ;;
esac

want=$(sed -n 's/^go \([0-9.]*\).*/go\1/p' go.mod)
local_version=$(cd / && GOTOOLCHAIN=local "$gobin" env GOVERSION)
log "go.mod asks for $want; local go is $local_version at $gobin"

# A local Go older than go.mod's fetches the newer toolchain from the Go module
# proxy only when GOTOOLCHAIN is auto. The Makefile sets it for its own runs;
# when this Go's defaults say local (some installations' go.env pin it),
# record auto for this user too so a plain `go test` works as well.
older=$(printf '%s\n%s\n' "${local_version#go}" "${want#go}" | sort -V | head -n1)
if [[ $older != "${want#go}" && $(cd / && env -u GOTOOLCHAIN "$gobin" env GOTOOLCHAIN) == local ]]; then
	log "go env -w GOTOOLCHAIN=auto (this Go defaults to local and is older than go.mod's $want)"
	env -u GOTOOLCHAIN "$gobin" env -w GOTOOLCHAIN=auto
fi

# Running go inside the module selects (and, the first time, downloads from
# the Go module proxy) the toolchain go.mod asks for.
have=$(GOTOOLCHAIN=${GOTOOLCHAIN:-auto} "$gobin" env GOVERSION) ||
	die "cannot select the toolchain go.mod asks for (is the Go module proxy reachable?)"
log "building with $have"
