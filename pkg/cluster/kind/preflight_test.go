package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/meshdrill/drill/internal/preflight"
	"github.com/meshdrill/drill/pkg/scenario"
)

// dockerInfo is `docker info --format '{{json .}}'` of an engine with cpus
// and mem bytes, trimmed to what a real one prints that drill reads.
func dockerInfo(cpus int, mem int64) string {
	return fmt.Sprintf(`{"ServerVersion":"27.3.1","OSType":"linux","Architecture":"x86_64","OperatingSystem":"Ubuntu 24.04.1 LTS","NCPU":%d,"MemTotal":%d,"CgroupVersion":"2","SecurityOptions":["name=apparmor","name=seccomp,profile=builtin","name=cgroupns"]}`, cpus, mem)
}

// fakeDocker installs a docker that answers `info` with info, `ps` (kind's
// cluster listing) with kindClusters, fails everything else, and records
// every call in the returned file: the proof that preflight created nothing.
// PATH holds only it.
func fakeDocker(t *testing.T, info string, kindClusters ...string) (calls string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in docker is a shell script")
	}
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	infoFile := filepath.Join(dir, "info.json")
	if err := os.WriteFile(infoFile, []byte(info+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	psFile := filepath.Join(dir, "ps.txt")
	ps := ""
	for _, c := range kindClusters {
		ps += c + "\n"
	}
	if err := os.WriteFile(psFile, []byte(ps), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
case "$1" in
info) exec /bin/cat %q ;;
ps) exec /bin/cat %q ;;
*) echo "docker $1: not expected during preflight" >&2; exit 3 ;;
esac
`, calls, infoFile, psFile)
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return calls
}

func seed(t *testing.T) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(filepath.Join("..", "..", "..", "scenarios", "reviews-failover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// closedURL is a loopback URL nothing listens on: downloads fail as they do
// offline, with "connection refused".
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// upPreflight runs Up as the CLI would and returns its preflight error, the
// log, and whether anything was created in the state directory.
func upPreflight(t *testing.T, s *scenario.Scenario, opts ...Option) (*preflight.Error, string) {
	t.Helper()
	var log bytes.Buffer
	state := filepath.Join(t.TempDir(), "state")
	bin := filepath.Join(t.TempDir(), "bin")
	t.Setenv(IstioctlEnv, "")
	p := New(append([]Option{
		WithStateDir(state), WithBinDir(bin),
		WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
	}, opts...)...)
	clusters, err := p.Up(context.Background(), s)
	if clusters != nil {
		t.Fatalf("Up returned clusters: %v", clusters)
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Up = %v; want a *preflight.Error\nlog:\n%s", err, log.String())
	}
	if pe.ExitCode() != 2 {
		t.Errorf("exit code %d", pe.ExitCode())
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the state directory was created before the preflight passed: %v", err)
	}
	if err := p.Down(context.Background()); err != nil {
		t.Errorf("Down after a failed preflight: %v", err)
	}
	return pe, log.String()
}

func problems(pe *preflight.Error) map[string]string {
	out := map[string]string{}
	for _, p := range pe.Problems {
		out[p.Check] = p.Error()
	}
	return out
}

// TestUpWithoutDocker is `drill run --provider kind` on a machine without
// Docker: a preflight error, exit code 2, that says so before anything is
// created or downloaded.
func TestUpWithoutDocker(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	rs := newReleaseServer(t, nil)
	pe, log := upPreflight(t, seed(t), WithDownloads(rs.URL, rs.URL))
	got := problems(pe)
	if len(got) != 1 || !strings.Contains(got["docker"], "docker: the docker CLI is not on PATH") || !strings.Contains(got["docker"], "--provider local") {
		t.Fatalf("problems = %v", got)
	}
	if !strings.HasPrefix(pe.Error(), "preflight failed: docker: the docker CLI is not on PATH (the kind provider runs each Kubernetes node as a Docker container); install Docker") {
		t.Errorf("message: %s", pe.Error())
	}
	if len(rs.hits) != 0 {
		t.Errorf("downloaded %v on a machine that cannot run the drill", rs.hits)
	}
	for _, skipped := range []string{"check=resources", "check=istioctl", "check=metallb", "check=kind-clusters"} {
		if !strings.Contains(log, `msg="preflight: skipped" `+skipped) {
			t.Errorf("log does not show %s skipped:\n%s", skipped, log)
		}
	}
	if !strings.Contains(log, `msg="preflight: ok" check=node-image`) {
		t.Errorf("log lacks the node image check:\n%s", log)
	}
}

func TestUpDockerDaemonDown(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	pe, _ := upPreflight(t, seed(t), WithDownloads(closedURL(t), closedURL(t)))
	got := problems(pe)
	if len(got) != 1 || !strings.Contains(got["docker"], "Is the docker daemon running?") || !strings.Contains(got["docker"], "start the Docker daemon") {
		t.Fatalf("problems = %v", got)
	}
}

// TestUpPreflightProblems: a small engine and kind clusters left over from an
// earlier run are both reported, and nothing is created.
func TestUpPreflightProblems(t *testing.T) {
	calls := fakeDocker(t, dockerInfo(2, 4<<30), "drill-cluster1", "other")
	pe, _ := upPreflight(t, seed(t), WithDownloads(closedURL(t), closedURL(t)))
	got := problems(pe)
	if !strings.Contains(got["resources"], "a drill of 2 kind clusters needs 3 CPUs (it has 2) and 7.0 GiB of memory (it has 4.0 GiB)") {
		t.Errorf("resources problem: %q", got["resources"])
	}
	if !strings.Contains(got["kind-clusters"], "kind clusters drill-cluster1 already exist; pass --reuse") ||
		!strings.Contains(got["kind-clusters"], "kind delete clusters drill-cluster1") {
		t.Errorf("kind-clusters problem: %q", got["kind-clusters"])
	}
	if _, ok := got["istioctl"]; ok {
		t.Errorf("istioctl was downloaded for an engine too small to run the drill")
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, "info ") && !strings.HasPrefix(line, "ps ") {
			t.Errorf("preflight ran `docker %s`", line)
		}
	}

	// Reusing takes the leftover cluster instead.
	fakeDocker(t, dockerInfo(8, 16<<30), "drill-cluster1")
	pe, log := upPreflight(t, seed(t), WithReuse(), WithDownloads(closedURL(t), closedURL(t)))
	if _, ok := problems(pe)["kind-clusters"]; ok || !strings.Contains(log, "reusing drill-cluster1") {
		t.Errorf("with --reuse: problems %v", problems(pe))
	}
}

// TestUpOffline: Docker is fine but nothing can be downloaded: the problems
// say what, from where, and how to provide it by hand.
func TestUpOffline(t *testing.T) {
	fakeDocker(t, dockerInfo(8, 16<<30))
	offline := closedURL(t)
	pe, _ := upPreflight(t, seed(t), WithDownloads(offline, offline))
	got := problems(pe)
	if len(got) != 2 {
		t.Fatalf("problems = %v", got)
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		if !strings.Contains(got["istioctl"], "istioctl 1.31.1") || !strings.Contains(got["istioctl"], "download failed: could not download "+offline+"/1.31.1/istioctl-1.31.1-") ||
			!strings.Contains(got["istioctl"], "on a machine without internet access") {
			t.Errorf("istioctl problem: %q", got["istioctl"])
		}
	}
	if !strings.Contains(got["metallb"], "MetalLB v0.15.2 manifest: download failed: could not download "+offline+"/v0.15.2/config/manifests/metallb-native.yaml") ||
		!strings.Contains(got["metallb"], "(its sha256 must be "+metallbManifestSHA256+")") {
		t.Errorf("metallb problem: %q", got["metallb"])
	}
}

// TestUpTamperedDownload: a download that does not match drill's pin is
// refused.
func TestUpTamperedDownload(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("istioctl is pinned by checksum for linux/amd64 here")
	}
	fakeDocker(t, dockerInfo(8, 16<<30))
	metallb, err := os.ReadFile(filepath.Join("testdata", "metallb-native-"+MetalLBVersion+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rs := newReleaseServer(t, map[string][]byte{
		"/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz":    fakeIstioctlArchive(t, IstioVersion),
		"/v0.15.2/config/manifests/metallb-native.yaml": metallb,
	})
	pe, log := upPreflight(t, seed(t), WithDownloads(rs.URL, rs.URL))
	got := problems(pe)
	if len(got) != 1 || !strings.Contains(got["istioctl"], "checksum mismatch") || !strings.Contains(got["istioctl"], "not "+istioctlSHA256["linux-amd64"]) {
		t.Fatalf("problems = %v", got)
	}
	if !strings.Contains(log, `msg="preflight: ok" check=metallb`) {
		t.Errorf("the genuine MetalLB manifest was not accepted:\n%s", log)
	}
}

func TestPlanErrors(t *testing.T) {
	s := seed(t)
	if _, err := New(WithIngressMode("nodeport")).plan(s); err == nil || !strings.Contains(err.Error(), `ingress mode "nodeport"`) {
		t.Errorf("plan with a bad ingress mode = %v", err)
	}
	runs, err := New(WithNamePrefix("ci-"), WithStateDir("/state")).plan(s)
	if err != nil {
		t.Fatal(err)
	}
	if runs[1].kindName != "ci-cluster2" || runs[1].context != "kind-ci-cluster2" || runs[1].kubeconfig != "/state/ci-cluster2.kubeconfig" || runs[1].index != 1 {
		t.Errorf("plan = %+v", runs[1])
	}
}

// TestPreflightIngressFallback: on an engine whose networks the host cannot
// route to (rootless, Docker Desktop's VM) the default ingress mode falls back
// to the host port and says why; a mode the user chose is kept, with a warning.
func TestPreflightIngressFallback(t *testing.T) {
	rootless := strings.Replace(dockerInfo(8, 16<<30), `"name=cgroupns"`, `"name=cgroupns","name=rootless"`, 1)
	desktop := strings.Replace(dockerInfo(8, 16<<30), `"Ubuntu 24.04.1 LTS"`, `"Docker Desktop"`, 1)
	for _, tc := range []struct {
		name, info string
		opts       []Option
		want       IngressMode
		warn       bool
	}{
		{"rootless, default mode", rootless, nil, IngressHostPort, false},
		{"Docker Desktop, default mode", desktop, nil, IngressHostPort, false},
		{"rootless, loadbalancer chosen", rootless, []Option{WithIngressMode(IngressLoadBalancer)}, IngressLoadBalancer, true},
		{"a plain engine", dockerInfo(8, 16<<30), nil, DefaultIngressMode(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeDocker(t, tc.info)
			url := closedURL(t)
			var log bytes.Buffer
			p := New(append([]Option{WithStateDir(t.TempDir()), WithBinDir(t.TempDir()), WithDownloads(url, url),
				WithLogger(slog.New(slog.NewTextHandler(&log, nil)))}, tc.opts...)...)
			t.Setenv(IstioctlEnv, "")
			err := p.Preflight(context.Background(), seed(t))
			var pe *preflight.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Preflight = %v; want the downloads to fail as a *preflight.Error", err)
			}
			if p.ingressMode != tc.want {
				t.Errorf("ingress mode %s, want %s", p.ingressMode, tc.want)
			}
			if _, failed := problems(pe)["ingress"]; failed {
				t.Errorf("the ingress check failed the preflight: %v", problems(pe))
			}
			warned := strings.Contains(log.String(), "cannot route to its container networks, where")
			if warned != tc.warn {
				t.Errorf("warned: %v, want %v\nlog:\n%s", warned, tc.warn, log.String())
			}
		})
	}
}
