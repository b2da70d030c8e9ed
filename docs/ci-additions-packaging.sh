# Lines for .ci/run from the packaging work (issue 16), to merge before the
# test step ("go test -race ./..."). Without them the tests that need these
# tools skip with a message saying so; nothing fails.
#
# helm renders and lints the chart in deploy/helm/strait
# (internal/packaging/helm_test.go). It is a Go module: the first install on
# a machine downloads and compiles it, about 4 minutes on two cores; after
# that the binary is in $(go env GOPATH)/bin and this line costs nothing.
command -v helm >/dev/null 2>&1 || [ -x "$(go env GOPATH)/bin/helm" ] ||
  go install helm.sh/helm/v4/cmd/helm@v4.3.2
# The chart's tests fail rather than skip when helm cannot be found.
export STRAIT_REQUIRE_HELM=1

# systemd-analyze (Debian package systemd, already on the go machines)
# verifies packaging/systemd/strait.service and scores its hardening
# (internal/packaging/systemd_test.go). Nothing to install; if a machine
# lacks it:
command -v systemd-analyze >/dev/null 2>&1 || {
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q systemd >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q systemd >/dev/null
  }
}

# The image test (internal/tools/image) and the cross-compile check of the
# release targets (internal/packaging/release_test.go) need only Go. From a
# cold build cache (a new machine) they compile strait five times: measured
# on two busy cores, 113 s for the image test and 226 s for the four
# targets (101, 47, 42, 36 s), side by side in about 3 min 50 s. With the
# warm cache of a machine that ran them before, 15 to 25 s together.
