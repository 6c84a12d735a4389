package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrMissingBinary is wrapped by the error StartControlPlane returns when a
// control-plane binary (or bin/istio-crds.yaml) is not where drill looks.
var ErrMissingBinary = errors.New("control-plane binary missing")

// BinDirEnv names the environment variable that overrides where the
// control-plane binaries are looked for.
const BinDirEnv = "DRILL_BIN_DIR"

const drillModule = "github.com/meshdrill/drill"

// Binaries are the files a local control plane runs.
type Binaries struct {
	Etcd              string
	APIServer         string
	ControllerManager string
	Istiod            string
	// IstioCRDs is Istio's CRD manifest (istio.io/api's
	// kubernetes/customresourcedefinitions.gen.yaml), copied by the build.
	IstioCRDs string
}

// FindBinaries locates the control-plane binaries. dir is where
// hack/build-tools.sh put them; when empty, DRILL_BIN_DIR is used, else bin/
// of the drill checkout that holds the working directory. etcd may also come
// from PATH (Debian's etcd-server package installs it there). withIstio says
// whether pilot-discovery and the CRDs are needed too.
func FindBinaries(dir string, withIstio bool) (Binaries, error) {
	if dir == "" {
		dir = defaultBinDir()
	}
	var b Binaries
	var missing []string
	need := func(name string) string {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, p)
			return ""
		}
		return p
	}
	b.APIServer = need("kube-apiserver")
	b.ControllerManager = need("kube-controller-manager")
	if withIstio {
		b.Istiod = need("pilot-discovery")
		b.IstioCRDs = need("istio-crds.yaml")
	}
	if p := filepath.Join(dir, "etcd"); fileExists(p) {
		b.Etcd = p
	} else if p, err := exec.LookPath("etcd"); err == nil {
		b.Etcd = p
	} else {
		missing = append(missing, "etcd (in "+dir+" or on PATH)")
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%w: %s; run `make tools` (or hack/build-tools.sh) in the drill checkout to build them, or point %s at the directory that holds them",
			ErrMissingBinary, strings.Join(missing, ", "), BinDirEnv)
	}
	return b, nil
}

// defaultBinDir is $DRILL_BIN_DIR, else bin/ at the root of the drill module
// that contains the working directory (tests run in their package's
// directory), else bin/ next to the running executable.
func defaultBinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		if root := findModuleRoot(wd); root != "" {
			return filepath.Join(root, "bin")
		}
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe)
	}
	return "bin"
}

// findModuleRoot walks up from dir to the directory whose go.mod declares the
// drill module.
func findModuleRoot(dir string) string {
	for {
		if isDrillModule(filepath.Join(dir, "go.mod")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isDrillModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == drillModule
		}
	}
	return false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
