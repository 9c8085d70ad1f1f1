package imagebuild

import (
	"fmt"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultPath is the PATH of every image.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is the runtime part of an image's configuration.
type Config struct {
	Entrypoint []string
	Cmd        []string
	// Env defaults to []string{DefaultPath}.
	Env []string
	// User is "" (root) or a uid[:gid] / name.
	User string
	// WorkingDir defaults to "/".
	WorkingDir string
}

// NewImage returns base (empty.Image when nil) with layers appended and its configuration set to
// cfg, for linux on the host's architecture.
func NewImage(base v1.Image, cfg Config, layers ...v1.Layer) (v1.Image, error) {
	if base == nil {
		base = empty.Image
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: cfg.Entrypoint,
		Cmd:        cfg.Cmd,
		Env:        cfg.Env,
		User:       cfg.User,
		WorkingDir: cfg.WorkingDir,
	}
	if cf.Config.Env == nil {
		cf.Config.Env = []string{DefaultPath}
	}
	if cf.Config.WorkingDir == "" {
		cf.Config.WorkingDir = "/"
	}
	return mutate.ConfigFile(img, cf)
}

// WriteTarball writes img tagged ref as a docker-archive tarball (`docker save` format, which
// `ctr images import` and kind's LoadImageArchive accept). The file appears atomically.
func WriteTarball(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ImageID returns the image ID (config digest, "sha256:...") of the single image in a
// docker-archive tarball: what the CRI reports as the image's ID.
func ImageID(path string) (string, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return "", err
	}
	h, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}
