package kind

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// releaseServer serves files on 127.0.0.1 and counts requests per path: a
// stand-in for GitHub's release downloads.
type releaseServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

func newReleaseServer(t *testing.T, files map[string][]byte) *releaseServer {
	t.Helper()
	rs := &releaseServer{files: files, hits: map[string]int{}}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.hits[r.URL.Path]++
		b, ok := rs.files[r.URL.Path]
		rs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *releaseServer) hitCount(path string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.hits[path]
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(ioDiscard{}, nil)) }

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

func TestFetch(t *testing.T) {
	body := []byte("the real artifact\n")
	rs := newReleaseServer(t, map[string][]byte{
		"/a.tar.gz":        body,
		"/a.tar.gz.sha256": []byte(sum(body) + "  a.tar.gz\n"),
		"/bad.sha256":      []byte("not a checksum\n"),
		"/bad":             body,
	})
	ctx := context.Background()
	dir := t.TempDir()
	a := Artifact{Name: "thing 1.0", URL: rs.URL + "/a.tar.gz", SHA256: sum(body), File: "a.tar.gz"}

	path, err := Fetch(ctx, rs.Client(), dir, a, discard())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Fatalf("cached file holds %q", got)
	}
	// Cached: no second download.
	if _, err := Fetch(ctx, rs.Client(), dir, a, discard()); err != nil || rs.hitCount("/a.tar.gz") != 1 {
		t.Fatalf("second Fetch: %v, %d downloads", err, rs.hitCount("/a.tar.gz"))
	}
	// A damaged cache is replaced.
	if err := os.WriteFile(path, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, rs.Client(), dir, a, discard()); err != nil || rs.hitCount("/a.tar.gz") != 2 {
		t.Fatalf("Fetch over a damaged cache: %v, %d downloads", err, rs.hitCount("/a.tar.gz"))
	}

	// A pinned checksum that the download does not match: refused, nothing
	// left in the cache.
	wrong := a
	wrong.SHA256 = strings.Repeat("0", 64)
	wrong.File = "wrong.tar.gz"
	_, err = Fetch(ctx, rs.Client(), dir, wrong, discard())
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "has sha256 "+sum(body)+", not "+wrong.SHA256) {
		t.Fatalf("Fetch with a wrong pin = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wrong.tar.gz")); !os.IsNotExist(err) {
		t.Fatalf("a refused download was cached: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// No pin: the checksum published next to the file is used.
	unpinned := Artifact{Name: "thing 1.0", URL: rs.URL + "/a.tar.gz", File: "unpinned.tar.gz"}
	if _, err := Fetch(ctx, rs.Client(), dir, unpinned, discard()); err != nil {
		t.Fatalf("Fetch without a pin: %v", err)
	}
	if _, err := Fetch(ctx, rs.Client(), dir, Artifact{Name: "bad", URL: rs.URL + "/bad", File: "bad"}, discard()); err == nil || !strings.Contains(err.Error(), "holds no sha256 checksum") {
		t.Fatalf("Fetch with an unreadable published checksum = %v", err)
	}

	// 404.
	_, err = Fetch(ctx, rs.Client(), dir, Artifact{Name: "gone 2.0", URL: rs.URL + "/gone.tar.gz", SHA256: sum(body), File: "gone.tar.gz"}, discard())
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("Fetch of a missing file = %v", err)
	}
}

// TestFetchOffline: with nothing answering, the error says what could not be
// downloaded, from where, where to put it by hand and what its checksum must
// be.
func TestFetchOffline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused, as offline
	dir := t.TempDir()
	a := Artifact{Name: "istioctl 1.31.1 (linux-amd64)", URL: "http://" + addr + "/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz",
		SHA256: istioctlSHA256["linux-amd64"], File: "istioctl-1.31.1-linux-amd64.tar.gz"}
	_, err = Fetch(context.Background(), http.DefaultClient, dir, a, discard())
	if !errors.Is(err, ErrDownload) {
		t.Fatalf("Fetch offline = %v, want ErrDownload", err)
	}
	for _, want := range []string{
		"istioctl 1.31.1 (linux-amd64): download failed: could not download http://" + addr + "/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz",
		"connection refused",
		"drill downloads it once and keeps it in " + dir,
		"put it at " + filepath.Join(dir, "istioctl-1.31.1-linux-amd64.tar.gz"),
		"(its sha256 must be " + istioctlSHA256["linux-amd64"] + ")",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("offline error lacks %q:\n%v", want, err)
		}
	}
}

func TestIstioctlArtifact(t *testing.T) {
	tests := []struct {
		goos, goarch string
		url, sha     string
		err          string
	}{
		{"linux", "amd64", IstioReleases + "/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz", istioctlSHA256["linux-amd64"], ""},
		{"linux", "arm64", IstioReleases + "/1.31.1/istioctl-1.31.1-linux-arm64.tar.gz", "", ""},
		{"darwin", "amd64", IstioReleases + "/1.31.1/istioctl-1.31.1-osx.tar.gz", "", ""},
		{"darwin", "arm64", IstioReleases + "/1.31.1/istioctl-1.31.1-osx-arm64.tar.gz", istioctlSHA256["darwin-arm64"], ""},
		{"windows", "amd64", "", "", "not released for windows/amd64; run drill on Linux or macOS (on Windows: inside WSL2), or set DRILL_ISTIOCTL"},
	}
	for _, tt := range tests {
		a, err := IstioctlArtifact(IstioReleases+"/", IstioVersion, tt.goos, tt.goarch)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s/%s: %v, want %q", tt.goos, tt.goarch, err, tt.err)
			}
			continue
		}
		if err != nil || a.URL != tt.url || a.SHA256 != tt.sha || a.File != filepath.Base(tt.url) {
			t.Errorf("%s/%s: %+v, %v; want %s %s", tt.goos, tt.goarch, a, err, tt.url, tt.sha)
		}
	}
	for k, v := range istioctlSHA256 {
		if _, err := hex.DecodeString(v); err != nil || len(v) != 64 {
			t.Errorf("pin of %s is not a sha256: %q", k, v)
		}
	}
}

// fakeIstioctlArchive is a release archive whose istioctl is a shell script
// answering `version` as istioctl does and echoing other calls.
func fakeIstioctlArchive(t *testing.T, version string) []byte {
	t.Helper()
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = version ]; then echo \"client version: " + version + "\"; exit 0; fi\n" +
		"echo \"istioctl $*\"\n" +
		"if [ \"$1\" = fail ]; then echo 'Error: failed to install manifests: context deadline exceeded' >&2; exit 1; fi\n"
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		mode int64
		body string
	}{
		{"LICENSE", 0o644, "Apache 2.0\n"},
		{"istioctl", 0o755, script},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEnsureIstioctl(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in istioctl is a shell script")
	}
	archive := fakeIstioctlArchive(t, IstioVersion)
	rs := newReleaseServer(t, map[string][]byte{"/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz": archive})
	a, err := IstioctlArtifact(rs.URL, IstioVersion, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	a.SHA256 = sum(archive) // the stand-in's own checksum, pinned
	dir := t.TempDir()
	t.Setenv(IstioctlEnv, "")
	ctx := context.Background()

	ic, err := EnsureIstioctl(ctx, rs.Client(), dir, a, IstioVersion, discard())
	if err != nil {
		t.Fatal(err)
	}
	if ic.Version != IstioVersion || ic.Path != filepath.Join(dir, "istioctl-"+IstioVersion) {
		t.Fatalf("istioctl %+v", ic)
	}
	// Cached: neither downloaded nor extracted again.
	if _, err := EnsureIstioctl(ctx, rs.Client(), dir, a, IstioVersion, discard()); err != nil || rs.hitCount("/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz") != 1 {
		t.Fatalf("second EnsureIstioctl: %v, %d downloads", err, rs.hitCount("/1.31.1/istioctl-1.31.1-linux-amd64.tar.gz"))
	}

	// Run streams what istioctl prints into the log and returns its last
	// words on failure.
	var log bytes.Buffer
	l := slog.New(slog.NewTextHandler(&log, nil)).With("cluster", "cluster1")
	if err := ic.Run(ctx, l, "install", "-y", "-f", "op.yaml"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `msg="istioctl: istioctl install -y -f op.yaml" cluster=cluster1`) {
		t.Errorf("istioctl's output is not in the log:\n%s", log.String())
	}
	err = ic.Run(ctx, l, "fail")
	if err == nil || !strings.Contains(err.Error(), "istioctl fail: exit status 1; it said: istioctl fail | Error: failed to install manifests: context deadline exceeded") {
		t.Errorf("Run of a failing istioctl = %v", err)
	}

	// DRILL_ISTIOCTL of another version is refused with advice.
	other := filepath.Join(t.TempDir(), "istioctl")
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho 'client version: 1.29.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(IstioctlEnv, other)
	_, err = EnsureIstioctl(ctx, rs.Client(), dir, a, IstioVersion, discard())
	if err == nil || !strings.Contains(err.Error(), "DRILL_ISTIOCTL="+other+" is istioctl 1.29.0; drill installs Istio 1.31.1") {
		t.Errorf("EnsureIstioctl with an istioctl of another version = %v", err)
	}
	// ... and of the right version, used as is.
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho '1.31.1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ic, err := EnsureIstioctl(ctx, rs.Client(), dir, a, IstioVersion, discard()); err != nil || ic.Path != other {
		t.Errorf("EnsureIstioctl with DRILL_ISTIOCTL: %+v, %v", ic, err)
	}
}

func TestExtractIstioctlMissing(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi"))
	_ = tw.Close()
	_ = gz.Close()
	p := filepath.Join(t.TempDir(), "a.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := extractIstioctl(p, filepath.Join(t.TempDir(), "istioctl")); err == nil || !strings.Contains(err.Error(), "holds no istioctl") {
		t.Fatalf("extractIstioctl = %v", err)
	}
}
