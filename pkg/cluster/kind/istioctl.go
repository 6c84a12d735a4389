package kind

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// IstioctlEnv names the environment variable that points drill at an istioctl
// binary to use instead of downloading one. It must be of IstioVersion.
const IstioctlEnv = "DRILL_ISTIOCTL"

// IstioReleases is where Istio publishes its release archives.
const IstioReleases = "https://github.com/istio/istio/releases/download"

// IstioctlArtifact is the istioctl release archive of version for a Go
// platform, named as Istio's release/downloadIstioCtl.sh names them:
// istioctl-V-linux-amd64, -linux-arm64, -osx (Intel Macs), -osx-arm64.
func IstioctlArtifact(base, version, goos, goarch string) (Artifact, error) {
	var suffix string
	switch {
	case goos == "linux" && (goarch == "amd64" || goarch == "arm64"):
		suffix = "linux-" + goarch
	case goos == "darwin" && goarch == "amd64":
		suffix = "osx"
	case goos == "darwin" && goarch == "arm64":
		suffix = "osx-arm64"
	default:
		return Artifact{}, fmt.Errorf("istioctl %s is not released for %s/%s; run drill on Linux or macOS (on Windows: inside WSL2), or set %s to an istioctl %s you built",
			version, goos, goarch, IstioctlEnv, version)
	}
	file := "istioctl-" + version + "-" + suffix + ".tar.gz"
	a := Artifact{
		Name: "istioctl " + version + " (" + suffix + ")",
		URL:  strings.TrimRight(base, "/") + "/" + version + "/" + file,
		File: file,
	}
	if version == IstioVersion {
		a.SHA256 = istioctlSHA256[goos+"-"+goarch]
	}
	return a, nil
}

// Istioctl is an istioctl binary of a known version.
type Istioctl struct {
	Path    string
	Version string
}

// semver finds the first version number in istioctl's output: a release
// (1.31.1) or a development build named after its branch (1.31-dev.SHA).
var semver = regexp.MustCompile(`\b(\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z.-]+)?)\b`)

// istioctlMu serialises extraction into the cache directory between
// providers of one process.
var istioctlMu sync.Mutex

// EnsureIstioctl returns an istioctl of version: the binary $DRILL_ISTIOCTL
// names when set, else binDir/istioctl-<version>, extracted from a's archive,
// which is downloaded into binDir first when it is not there. Either way the
// binary is run once (`istioctl version --remote=false`) and must report
// version.
func EnsureIstioctl(ctx context.Context, client *http.Client, binDir string, a Artifact, version string, log *slog.Logger) (*Istioctl, error) {
	if p := os.Getenv(IstioctlEnv); p != "" {
		got, err := istioctlVersion(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", IstioctlEnv, p, err)
		}
		if got != version {
			return nil, fmt.Errorf("%s=%s is istioctl %s; drill installs Istio %s and needs that istioctl: unset %s to let drill download it, or point it at istioctl %s",
				IstioctlEnv, p, got, version, IstioctlEnv, version)
		}
		log.Info("using istioctl from "+IstioctlEnv, "path", p, "version", got)
		return &Istioctl{Path: p, Version: got}, nil
	}

	istioctlMu.Lock()
	defer istioctlMu.Unlock()
	bin := filepath.Join(binDir, "istioctl-"+version)
	archive, err := Fetch(ctx, client, binDir, a, log)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		if err := extractIstioctl(archive, bin); err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		log.Info("extracted istioctl", "path", bin)
	}
	got, err := istioctlVersion(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; remove %s and %s to download it again", a.Name, err, bin, archive)
	}
	if got != version {
		return nil, fmt.Errorf("%s reports version %s, not %s; remove it to extract the pinned one again", bin, got, version)
	}
	return &Istioctl{Path: bin, Version: got}, nil
}

// extractIstioctl writes the istioctl file of a release archive to dst.
func extractIstioctl(archive, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s holds no istioctl", archive)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if h.Typeflag != tar.TypeReg || filepath.Base(h.Name) != "istioctl" {
			continue
		}
		tmp := dst + ".part"
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		// The archive's checksum was verified, so its size is what Istio
		// published; the limit only guards against a corrupt header.
		_, err = io.Copy(out, io.LimitReader(tr, 1<<30))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, dst)
	}
}

// istioctlVersion runs `istioctl version --remote=false` and returns the
// client version it prints ("client version: 1.31.1", or just "1.31.1").
func istioctlVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "version", "--remote=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("`%s version --remote=false` failed: %w: %s", path, err, firstLine(out.String()))
	}
	m := semver.FindStringSubmatch(out.String())
	if m == nil {
		return "", fmt.Errorf("`%s version --remote=false` printed no version: %q", path, firstLine(out.String()))
	}
	return m[1], nil
}

// Run runs istioctl with args, every line it prints going to log with the
// cluster's name, and returns its error with the last lines it printed.
func (i *Istioctl) Run(ctx context.Context, log *slog.Logger, args ...string) error {
	cmd := exec.CommandContext(ctx, i.Path, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			log.Info("istioctl: " + line)
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	log.Info("running istioctl", "args", strings.Join(args, " "))
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("istioctl %s: %w; it said: %s", args[0], err, strings.Join(tail, " | "))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
