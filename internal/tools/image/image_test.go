package main

import (
	"archive/tar"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/strait-dev/strait/internal/buildinfo"
)

var testStamp = Stamp{Version: "v0.0.0-imagetest", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-01-02T03:04:05Z"}

// TestImageTarball builds the image for this machine's architecture the
// way a user does, reads the tarball back and checks what a container
// runtime would run.
func TestImageTarball(t *testing.T) {
	dependOnSources(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "strait.tar")
	o, err := parseFlags([]string{"-tarball", out, "-ca-certs", ca, "-version", testStamp.Version, "-commit", testStamp.Commit, "-date", testStamp.Date})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("strait:" + testStamp.Version)
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read the tarball back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (not root)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/strait"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q, want [/strait] [serve]", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["8090/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v, want 8090/tcp", c.ExposedPorts)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/strait-dev/strait",
		"org.opencontainers.image.version":  testStamp.Version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.revision": testStamp.Commit,
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if got := cf.Created.UTC().Format("2006-01-02T15:04:05Z"); got != testStamp.Date {
		t.Errorf("created %s, want the stamp's date %s", got, testStamp.Date)
	}

	files := extract(t, img)
	want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "strait"}
	if got := slices.Sorted(mapsKeys(files)); !slices.Equal(got, want) {
		t.Fatalf("image files %q, want exactly %q", got, want)
	}
	for n, f := range files {
		if f.hdr.Uid != 0 || f.hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root: the user the image runs as must not be able to change it", n, f.hdr.Uid, f.hdr.Gid)
		}
	}
	bin := files["strait"]
	if bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o111 != 0o111 || bin.hdr.Mode&0o022 != 0 {
		t.Errorf("/strait type %c mode %o, want a regular file, executable by all, writable by its owner only", bin.hdr.Typeflag, bin.hdr.Mode)
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":65532:65532:") {
		t.Errorf("/etc/passwd names no user 65532:\n%s", files["etc/passwd"].data)
	}
	if string(files["etc/ssl/certs/ca-certificates.crt"].data) != "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n" {
		t.Error("the CA bundle is not the one given")
	}
	checkStatic(t, bin.data)

	// On a Linux machine the binary runs here too: it must say the
	// version it was stamped with.
	if runtime.GOOS == "linux" {
		p := filepath.Join(dir, "strait")
		if err := os.WriteFile(p, bin.data, 0o755); err != nil {
			t.Fatal(err)
		}
		outb, err := exec.Command(p, "version", "-o", "json").Output()
		if err != nil {
			t.Fatalf("strait version: %v", err)
		}
		var in buildinfo.Info
		if err := json.Unmarshal(outb, &in); err != nil {
			t.Fatalf("strait version -o json: %v\n%s", err, outb)
		}
		if in.Version != testStamp.Version || in.Commit != testStamp.Commit || in.Date != testStamp.Date {
			t.Errorf("the image's strait says %+v, want the stamp %+v", in, testStamp)
		}
	}

	// The OCI layout: a stand-in binary under two platforms (this test
	// does not cross-compile a second one, and gzip under -race is slow;
	// the index is what is checked).
	lay := filepath.Join(dir, "oci")
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	var imgs []v1.Image
	for _, p := range plats {
		im, err := Image([]byte("stand-in for strait"), p, testStamp, "")
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, im)
	}
	if err := writeLayout(lay, tag, plats, imgs); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != tag.TagStr() {
		t.Fatalf("index.json holds %+v, want one image index named %s", tm.Manifests, tag.TagStr())
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("layout index has %d manifests, want 2", len(im.Manifests))
	}
	for i, m := range im.Manifests {
		if m.Platform == nil || m.Platform.Architecture != plats[i].Architecture {
			t.Errorf("manifest %d platform %v, want %v", i, m.Platform, plats[i])
		}
		one, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(mapsKeys(extract(t, one))); !slices.Equal(got, []string{"etc", "etc/group", "etc/passwd", "strait"}) {
			t.Errorf("%s without CA certificates holds %q", plats[i].Architecture, got)
		}
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// extract reads the image's flattened file system.
func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = entry{h, b}
	}
}

func mapsKeys(m map[string]entry) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkStatic: an empty base has no dynamic loader or libc, so the binary
// must need neither.
func checkStatic(t *testing.T, b []byte) {
	t.Helper()
	f, err := elf.NewFile(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("/strait is not an ELF binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/strait asks for a dynamic loader: it must be built with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("/strait needs shared libraries %q", libs)
	}
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if wantMachine != 0 && f.Machine != wantMachine {
		t.Errorf("/strait is for %v, want %v", f.Machine, wantMachine)
	}
}

// TestBinaryChecked: a binary given with -binary that cannot run on the
// empty base is refused before an image is written.
func TestBinaryChecked(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, binary, platform, wantErr string }{
		{"not ELF", notELF, "linux/amd64", "not an ELF binary"},
	}
	// The test binary itself: built with cgo (for -race) it is dynamic;
	// and it is for this machine's architecture only.
	self, _ := os.Executable()
	if runtime.GOOS == "linux" {
		other := map[string]string{"amd64": "linux/arm64", "arm64": "linux/amd64"}[runtime.GOARCH]
		if other != "" {
			tests = append(tests, struct{ name, binary, platform, wantErr string }{"another architecture", self, other, "not " + strings.TrimPrefix(other, "linux/")})
		}
		if f, err := elf.Open(self); err == nil {
			dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
			f.Close()
			if dynamic {
				tests = append(tests, struct{ name, binary, platform, wantErr string }{"dynamic", self, "linux/" + runtime.GOARCH, "CGO_ENABLED=0"})
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.tar")
			o, err := parseFlags([]string{"-tarball", out, "-binary", tc.binary, "-platform", tc.platform, "-ca-certs", "", "-version", "v0"})
			if err != nil {
				t.Fatal(err)
			}
			err = run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an image was written anyway")
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil, wantErr: "-tarball FILE or -oci-layout DIR"},
		{args: []string{"-tarball", "x.tar", "-platform", "linux/amd64,linux/arm64"}, wantErr: "one platform"},
		{args: []string{"-oci-layout", "d", "-platform", "linux/amd64,linux/arm64", "-binary", "b"}, wantErr: "one platform"},
		{args: []string{"-tarball", "x.tar", "-platform", "darwin/arm64"}, wantErr: "linux/<arch>"},
		{args: []string{"-tarball", "x.tar", "extra"}, wantErr: "unexpected arguments"},
		{args: []string{"-oci-layout", "d", "-platform", "linux/amd64, linux/arm64"}},
		{args: []string{"-tarball", "x.tar"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestTagSafe(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "v1.2.3", "v0.0.0-2026+dirty": "v0.0.0-2026-dirty", "dev-abc": "dev-abc"} {
		if got := tagSafe(in); got != want {
			t.Errorf("tagSafe(%q) = %q, want %q", in, got, want)
		}
		if _, err := name.NewTag("strait:" + tagSafe(in)); err != nil {
			t.Errorf("strait:%s is no tag: %v", tagSafe(in), err)
		}
	}
}

// dependOnSources makes this test's cached result depend on every Go
// source file of the module: go test caches by the files the test opened,
// and this one builds strait from files it does not open.
func dependOnSources(t *testing.T) {
	t.Helper()
	root, err := moduleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
