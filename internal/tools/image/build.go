package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strait-dev/strait/internal/buildinfo"
)

// The image's fixed parts.
const (
	// uid and gid of the user the image runs as: not root, and the same
	// number distroless images use, so policies written for those fit.
	uid = 65532
	// port is the REST API's port (the daemon's default, 8090).
	port       = "8090/tcp"
	binaryPath = "strait"
	sourceURL  = "https://github.com/strait-dev/strait"
	license    = "Apache-2.0"

	// DefaultCACerts is where Debian, Ubuntu and Alpine keep the CA
	// bundle, and one of the paths Go's crypto/x509 reads on Linux.
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
)

// passwd and group name root (for the files' owner) and the user the
// image runs as. Its home does not exist: the root file system is meant to
// be read-only and Strait writes no files.
var (
	passwd = fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/nonexistent:/sbin/nologin\n", uid, uid)
	group  = fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
)

// Stamp is what the image and its binary say about the build.
type Stamp struct {
	Version string
	Commit  string
	// Date is the build date (RFC 3339) stamped into the binary and used
	// as the image's creation time and every file's time, so that the
	// same commit gives the same image.
	Date string
}

// created is the time the image and its files carry: Date, or the epoch.
func (s Stamp) created() time.Time {
	t, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// buildBinary cross-compiles cmd/strait for platform into out: static
// (no cgo), without local paths, with the version stamped in.
func buildBinary(ctx context.Context, p v1.Platform, s Stamp, out string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", buildinfo.LDFlags(s.Version, s.Commit, s.Date), "-o", out, "./cmd/strait")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", p, err, b)
	}
	return nil
}

// elfMachines are the ELF machines of the architectures checkBinary knows.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV}

// checkBinary refuses what cannot run on the image's empty base: anything
// but a Linux ELF executable for p's architecture, and one that needs a
// dynamic loader (a cgo build).
func checkBinary(b []byte, p v1.Platform) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF binary (a Linux build of strait): %w", err)
	}
	defer f.Close()
	if want, ok := elfMachines[p.Architecture]; ok && f.Machine != want {
		return fmt.Errorf("the binary is for %v, not %s", f.Machine, p.Architecture)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("the binary needs a dynamic loader, which the empty base has not: build it with CGO_ENABLED=0")
		}
	}
	return nil
}

// moduleRoot is the directory of Strait's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside Strait's module: run this from the repository")
	}
	return filepath.Dir(gomod), nil
}

// file is one entry of the image's only layer.
type file struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// layerFiles lists what the image holds: the binary, the user database
// and, if caCerts is not "", the CA bundle read from there.
func layerFiles(binary []byte, caCerts string) ([]file, error) {
	fs := []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: binaryPath, mode: 0o755, data: binary},
	}
	if caCerts != "" {
		b, err := os.ReadFile(caCerts)
		if err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
		fs = append(fs,
			file{name: "etc/ssl/", mode: 0o755, dir: true},
			file{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: b})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
	return fs, nil
}

// layer packs files into a tar, every entry owned by root with the time t.
func layer(files []file, t time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: t, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// Image builds the image of one platform around binary (a static strait
// built for it).
func Image(binary []byte, p v1.Platform, s Stamp, caCerts string) (v1.Image, error) {
	files, err := layerFiles(binary, caCerts)
	if err != nil {
		return nil, err
	}
	created := s.created()
	l, err := layer(files, created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "internal/tools/image: strait, CA certificates, /etc/passwd", Comment: s.Version},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: created}
	cf.Author = "The Strait authors"
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{"/" + binaryPath},
		Cmd:          []string{"serve"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{port: {}},
		Env:          []string{"PATH=/"},
		Labels:       labels(s),
	}
	return mutate.ConfigFile(img, cf)
}

// labels are the OCI annotations of the image's config.
func labels(s Stamp) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "Strait",
		"org.opencontainers.image.description": "Open-source cluster linking for any Kafka cluster",
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.licenses":    license,
		"org.opencontainers.image.version":     s.Version,
	}
	if s.Commit != "" {
		l["org.opencontainers.image.revision"] = s.Commit
	}
	if s.Date != "" {
		l["org.opencontainers.image.created"] = s.Date
	}
	return l
}
