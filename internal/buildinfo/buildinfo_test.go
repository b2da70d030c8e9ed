package buildinfo

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/strait-dev/strait", Version: "v0.0.0-20260102030405-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name                string
		bi                  *debug.BuildInfo
		ldv, ldc, ldd       string
		want                Info
		wantString          string
		wantShortCommit     string
		wantStringNotToHave string
	}{
		{
			name: "nothing known",
			want: Info{Version: "dev", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH},
			// go test binaries carry no VCS stamp: this is what they print.
			wantString:      "dev (commit unknown, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")",
			wantShortCommit: "unknown",
		},
		{
			name:            "devel module version is not a version",
			bi:              &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}},
			want:            Info{Version: "dev", GoVersion: "go1.99.1", Platform: runtime.GOOS + "/" + runtime.GOARCH},
			wantShortCommit: "unknown",
		},
		{
			name: "toolchain stamp only",
			bi:   stamped,
			want: Info{Version: "v0.0.0-20260102030405-0123456789ab+dirty", Commit: "0123456789abcdef0123456789abcdef01234567",
				Modified: true, CommitDate: "2026-01-02T03:04:05Z", GoVersion: "go1.99.1", Platform: runtime.GOOS + "/" + runtime.GOARCH},
			wantString:      "v0.0.0-20260102030405-0123456789ab+dirty (commit 0123456789ab-dirty, committed 2026-01-02T03:04:05Z, go1.99.1 ",
			wantShortCommit: "0123456789ab-dirty",
		},
		{
			name: "linker values win",
			bi:   stamped,
			ldv:  "v1.2.3", ldc: "fedcba9876543210", ldd: "2026-02-03T04:05:06Z",
			want: Info{Version: "v1.2.3", Commit: "fedcba9876543210", Date: "2026-02-03T04:05:06Z",
				CommitDate: "2026-01-02T03:04:05Z", GoVersion: "go1.99.1", Platform: runtime.GOOS + "/" + runtime.GOARCH},
			wantString:          "v1.2.3 (commit fedcba987654, built 2026-02-03T04:05:06Z, go1.99.1 ",
			wantShortCommit:     "fedcba987654",
			wantStringNotToHave: "dirty",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := from(tc.bi, tc.ldv, tc.ldc, tc.ldd)
			if got != tc.want {
				t.Fatalf("from:\n got %+v\nwant %+v", got, tc.want)
			}
			if s := got.ShortCommit(); s != tc.wantShortCommit {
				t.Errorf("ShortCommit %q, want %q", s, tc.wantShortCommit)
			}
			if s := got.String(); !strings.HasPrefix(s, tc.wantString) {
				t.Errorf("String %q, want it to start with %q", s, tc.wantString)
			}
			if tc.wantStringNotToHave != "" && strings.Contains(got.String(), tc.wantStringNotToHave) {
				t.Errorf("String %q has %q", got.String(), tc.wantStringNotToHave)
			}
		})
	}
}

func TestLDFlagsNameThisPackage(t *testing.T) {
	f := LDFlags("v1", "c", "d")
	for _, want := range []string{"-X " + pkgPath + ".version=v1", "-X " + pkgPath + ".commit=c", "-X " + pkgPath + ".date=d"} {
		if !strings.Contains(f, want) {
			t.Errorf("LDFlags %q lacks %q", f, want)
		}
	}
	// The path must be this package's, or -X sets nothing and says nothing.
	type probe struct{}
	if p := reflect.TypeOf(probe{}).PkgPath(); p != pkgPath {
		t.Errorf("pkgPath %q, but this package is %q", pkgPath, p)
	}
}
