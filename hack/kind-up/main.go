// Command kind-up (make kind-up) runs the e2e tests' cluster on kind instead of the local
// bare-process cluster, on a machine with Docker or Podman: it creates the kind cluster (or reuses
// it), writes its kubeconfig to .cluster/kubeconfig, and loads the local images into its node.
//
// It fails at once when no container engine is found.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox/internal/imagebuild"
	"github.com/podsandbox/podsandbox/internal/kindcluster"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("[kind-up] ")
	root, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	var (
		o      kindcluster.Options
		images string
	)
	flag.StringVar(&o.Name, "name", kindcluster.DefaultName, "kind cluster name")
	flag.StringVar(&o.NodeImage, "image", os.Getenv("KIND_NODE_IMAGE"), "kind node image (default: kind's default; env KIND_NODE_IMAGE)")
	flag.StringVar(&o.Kubeconfig, "kubeconfig", filepath.Join(root, ".cluster", "kubeconfig"), "where to write the kubeconfig")
	flag.StringVar(&images, "images", "busybox,python,noshell,sandbox-server", "local images to build and load (see internal/imagebuild)")
	flag.DurationVar(&o.Wait, "wait", 5*time.Minute, "how long to wait for the control plane")
	flag.Parse()

	engine, err := kindcluster.DetectEngine()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("container engine: %s (%s)", engine.Name, engine.Path)

	b := imagebuild.Builder{Dir: filepath.Join(cacheDir(), "images"), Root: root, Logf: log.Printf}
	res, err := b.Build(context.Background(), strings.Split(images, ",")...)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		o.Images = append(o.Images, r.Path)
	}
	if err := kindcluster.Up(engine, o, log.Printf); err != nil {
		log.Fatal(err)
	}
	log.Printf("kubeconfig: %s", o.Kubeconfig)
}

// cacheDir mirrors hack/cluster/lib.sh.
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
