// Command image builds Strait's container image without a Docker daemon:
// it cross-compiles a static strait for each platform asked, puts it on
// an empty base with the CA certificates and an /etc/passwd naming the
// non-root user it runs as (65532), and writes the image as a tarball
// that docker load and podman load read, or as an OCI image layout (one
// index over several platforms, for skopeo or crane to push).
//
//	go run ./internal/tools/image -tarball strait.tar
//	go run ./internal/tools/image -platform linux/amd64,linux/arm64 -oci-layout strait-oci
//
// It lives under internal/tools rather than cmd/ because it is a tool for
// building Strait, not part of what users install, and it keeps
// go-containerregistry out of the strait binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// options are the command line's.
type options struct {
	platforms []v1.Platform
	tarball   string
	ociLayout string
	tag       string
	binary    string
	caCerts   string
	stamp     Stamp
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		err = run(context.Background(), o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	platforms := fs.String("platform", "linux/"+runtime.GOARCH, "comma-separated platforms to build, os/arch[/variant]")
	fs.StringVar(&o.tarball, "tarball", "", "write the image (one platform) as a tarball for docker load / podman load")
	fs.StringVar(&o.ociLayout, "oci-layout", "", "write an OCI image layout directory with an index of every platform")
	fs.StringVar(&o.tag, "tag", "", "the image's name in the tarball (default strait:<version>)")
	fs.StringVar(&o.binary, "binary", "", "use this strait binary instead of building one (one platform only; it must be static)")
	fs.StringVar(&o.caCerts, "ca-certs", DefaultCACerts, `CA bundle to put in the image ("" for none); left out with a warning when the default is missing`)
	fs.StringVar(&o.stamp.Version, "version", "", "version to stamp (default from git describe)")
	fs.StringVar(&o.stamp.Commit, "commit", "", "commit to stamp (default git HEAD)")
	fs.StringVar(&o.stamp.Date, "date", "", "build date, RFC 3339 (default $SOURCE_DATE_EPOCH, else the commit's time)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil || p.OS != "linux" || p.Architecture == "" {
			return o, fmt.Errorf("platform %q: give linux/<arch>, e.g. linux/amd64", s)
		}
		o.platforms = append(o.platforms, *p)
	}
	switch {
	case o.tarball == "" && o.ociLayout == "":
		return o, errors.New("say where to write the image: -tarball FILE or -oci-layout DIR")
	case o.tarball != "" && len(o.platforms) > 1:
		return o, errors.New("a tarball holds one platform: use -oci-layout for several")
	case o.binary != "" && len(o.platforms) > 1:
		return o, errors.New("-binary gives one platform's binary: build one platform at a time")
	}
	return o, nil
}

func run(ctx context.Context, o options) error {
	if o.caCerts == DefaultCACerts {
		if _, err := os.Stat(o.caCerts); err != nil {
			fmt.Fprintf(os.Stderr, "image: no CA certificates at %s: the image will have none (TLS to brokers then needs destination_ca_file)\n", o.caCerts)
			o.caCerts = ""
		}
	}
	o.stamp = fillStamp(ctx, o.stamp)
	if o.tag == "" {
		o.tag = "strait:" + tagSafe(o.stamp.Version)
	}
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", o.tag, err)
	}
	tmp, err := os.MkdirTemp("", "strait-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	images := make([]v1.Image, len(o.platforms))
	for i, p := range o.platforms {
		bin := o.binary
		if bin == "" {
			bin = filepath.Join(tmp, "strait-"+strings.ReplaceAll(p.String(), "/", "-"))
			fmt.Fprintf(os.Stderr, "image: building strait %s for %s\n", o.stamp.Version, p)
			if err := buildBinary(ctx, p, o.stamp, bin); err != nil {
				return err
			}
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		if err := checkBinary(b, p); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		if images[i], err = Image(b, p, o.stamp, o.caCerts); err != nil {
			return fmt.Errorf("image for %s: %w", p, err)
		}
	}
	if o.tarball != "" {
		if err := tarball.WriteToFile(o.tarball, ref, images[0]); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "image: wrote %s (%s, %s): docker load -i %[1]s\n", o.tarball, ref, o.platforms[0])
	}
	if o.ociLayout != "" {
		if err := writeLayout(o.ociLayout, ref, o.platforms, images); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "image: wrote the OCI layout %s (%d platforms)\n", o.ociLayout, len(images))
	}
	return nil
}

// writeLayout writes an OCI image layout at dir whose index.json names
// (ref's tag) one image index with a manifest per platform, the shape
// skopeo copy --all and crane push --index take.
func writeLayout(dir string, ref name.Tag, platforms []v1.Platform, images []v1.Image) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		p := platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref.TagStr()}))
}

// fillStamp completes s from git and $SOURCE_DATE_EPOCH. Outside a git
// checkout the version is "dev" and the commit unknown.
func fillStamp(ctx context.Context, s Stamp) Stamp {
	git := func(args ...string) string {
		b, err := exec.CommandContext(ctx, "git", args...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if s.Commit == "" {
		s.Commit = git("rev-parse", "HEAD")
	}
	if s.Version == "" {
		s.Version = git("describe", "--tags", "--always", "--dirty")
		if !strings.HasPrefix(s.Version, "v") {
			// No release tag: an abbreviated commit.
			s.Version = "dev-" + s.Version
		}
		if s.Version == "dev-" {
			s.Version = "dev"
		}
	}
	if s.Date == "" {
		if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
			s.Date = time.Unix(sec, 0).UTC().Format(time.RFC3339)
		} else if t, err := time.Parse(time.RFC3339, git("log", "-1", "--format=%cI")); err == nil {
			s.Date = t.UTC().Format(time.RFC3339)
		}
	}
	return s
}

// tagSafe makes v a valid image tag: letters, digits, '_', '.', '-'.
func tagSafe(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
