// Package buildinfo says which Strait this is: version, commit, build date
// and Go version. A release build sets them with the linker (LDFlags); any
// other build takes what the Go toolchain stamped into the binary (module
// version, VCS revision and time), so a plain go build from a checkout
// still says which commit it is.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the linker: see LDFlags. Empty in builds that do not set them.
var (
	version string
	commit  string
	date    string
)

// pkgPath is this package's import path, for -X.
const pkgPath = "github.com/strait-dev/strait/internal/buildinfo"

// LDFlags returns the -ldflags that stamp a release build with version,
// commit and date (RFC 3339), stripped of symbol tables. goreleaser's
// configuration, the image builder and the tests use it, so they agree.
func LDFlags(version, commit, date string) string {
	return fmt.Sprintf("-s -w -X %[1]s.version=%[2]s -X %[1]s.commit=%[3]s -X %[1]s.date=%[4]s", pkgPath, version, commit, date)
}

// Info describes the running binary.
type Info struct {
	// Version is the release version (v1.2.3), the module's pseudo-version
	// for a build from a checkout, or "dev" when nothing says.
	Version string `json:"version" yaml:"version"`
	// Commit is the full VCS revision, "" when unknown.
	Commit string `json:"commit" yaml:"commit"`
	// Modified reports a build from a work tree with uncommitted changes.
	Modified bool `json:"modified,omitempty" yaml:"modified,omitempty"`
	// Date is when the release was built (RFC 3339), "" when the build
	// did not say.
	Date string `json:"date,omitempty" yaml:"date,omitempty"`
	// CommitDate is the commit's time (RFC 3339), "" when unknown.
	CommitDate string `json:"commit_date,omitempty" yaml:"commit_date,omitempty"`
	// GoVersion is the Go toolchain the binary was built with.
	GoVersion string `json:"go_version" yaml:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform" yaml:"platform"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return from(bi, version, commit, date)
}

// from builds an Info from the toolchain's stamp bi (nil if none) and the
// linker-set values, which win.
func from(bi *debug.BuildInfo, ldVersion, ldCommit, ldDate string) Info {
	in := Info{Version: ldVersion, Commit: ldCommit, Date: ldDate, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		var vcsCommit, vcsTime string
		var vcsModified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsCommit = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				vcsModified = s.Value == "true"
			}
		}
		if in.Commit == "" {
			// The linker's commit names a release; the work tree's state
			// belongs to the toolchain's stamp of the same checkout.
			in.Commit, in.Modified = vcsCommit, vcsModified
		}
		in.CommitDate = vcsTime
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	return in
}

// ShortCommit is the first 12 characters of Commit, with "-dirty" for a
// modified work tree; "unknown" when there is no commit.
func (i Info) ShortCommit() string {
	c := i.Commit
	if c == "" {
		return "unknown"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return c
}

// String is the one-line form: "v1.2.3 (commit 0123456789ab, built
// 2026-01-02T03:04:05Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	parts := []string{"commit " + i.ShortCommit()}
	switch {
	case i.Date != "":
		parts = append(parts, "built "+i.Date)
	case i.CommitDate != "":
		parts = append(parts, "committed "+i.CommitDate)
	}
	parts = append(parts, i.GoVersion+" "+i.Platform)
	return i.Version + " (" + strings.Join(parts, ", ") + ")"
}
