package daemon

// The probe's timing, for the tests of package daemon_test (which start
// daemons with internal/testutil/daemontest, and so cannot be in package
// daemon).
const (
	ProbeEvery    = probeEvery
	ProbeTimeout  = probeTimeout
	ProbeFailures = probeFailures
)
