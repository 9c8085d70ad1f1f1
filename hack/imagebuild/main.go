// Command imagebuild builds the local cluster's images (see internal/imagebuild) as docker-archive
// tarballs and prints one line per image on stdout:
//
//	<ref> <tarball> <image ID> <size in bytes>
//
// hack/cluster/images.sh imports them into the cluster's containerd. Progress goes to stderr.
//
//	go run ./hack/imagebuild [-dir DIR] [-only pause,busybox,...] [-server-pkg ./cmd/sandbox-server]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podsandbox/podsandbox/internal/imagebuild"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("[imagebuild] ")
	var (
		b    imagebuild.Builder
		only string
	)
	flag.StringVar(&b.Dir, "dir", filepath.Join(cacheDir(), "images"), "directory of the image tarballs")
	flag.StringVar(&b.RootfsDir, "rootfs-dir", "", "directory of the debootstrap root file systems (default DIR/../rootfs)")
	flag.StringVar(&b.Root, "root", "", "module root (default: found from the working directory)")
	flag.StringVar(&b.Busybox, "busybox", "/bin/busybox", "static busybox binary to package")
	flag.StringVar(&b.Grep, "grep", imagebuild.DefaultGrep, "GNU grep for the sandbox-server image (with the libraries it loads)")
	flag.StringVar(&b.Dash, "dash", imagebuild.DefaultDash, "dash, the sandbox-server image's /bin/sh (with the libraries it loads)")
	flag.StringVar(&b.Suite, "suite", "bookworm", "Debian suite for the python image")
	flag.StringVar(&b.Mirror, "mirror", "http://deb.debian.org/debian", "Debian mirror for debootstrap")
	flag.StringVar(&b.ServerPkg, "server-pkg", "", "Go package of the in-pod server (default ./cmd/sandbox-server, skipped when missing)")
	flag.StringVar(&only, "only", "", "comma-separated images to build (default all: "+strings.Join(imagebuild.Names, ",")+")")
	flag.Parse()

	if b.Root == "" {
		r, err := moduleRoot()
		if err != nil {
			log.Fatal(err)
		}
		b.Root = r
	}
	b.Logf = log.Printf
	var names []string
	if only != "" {
		names = strings.Split(only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := b.Build(ctx, names...)
	for _, r := range res {
		how := "built"
		if r.Cached {
			how = "cached"
		}
		log.Printf("%-38s %6.1f MB  %s  %s", r.Ref, float64(r.Size)/1e6, how, filepath.Base(r.Path))
		fmt.Printf("%s %s %s %d\n", r.Ref, r.Path, r.ID, r.Size)
	}
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("images ready in %.1fs", time.Since(start).Seconds())
}

// cacheDir mirrors hack/cluster/lib.sh: $PODSANDBOX_CACHE, else $XDG_CACHE_HOME/podsandbox, else
// ~/.cache/podsandbox.
func cacheDir() string {
	if d := os.Getenv("PODSANDBOX_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "podsandbox")
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", fmt.Errorf("no go.mod above the working directory; pass -root")
		}
		d = p
	}
}
