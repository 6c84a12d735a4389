package kind

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Artifact is a file drill downloads once and keeps: a release archive or a
// manifest, pinned by version and checksum.
type Artifact struct {
	// Name says what it is in messages, e.g. "istioctl 1.31.1 (linux-amd64)".
	Name string
	// URL is where it is downloaded from.
	URL string
	// SHA256 is its pinned checksum (hex). When empty, the checksum the
	// publisher serves at URL+".sha256" is used, and the log says so.
	SHA256 string
	// File is the name it is kept under in the cache directory.
	File string
}

// ErrDownload is wrapped by the errors Fetch returns when the artifact could
// not be downloaded (no network, an unreachable host, an HTTP error).
var ErrDownload = errors.New("download failed")

// ErrChecksum is wrapped by the error Fetch returns when what was downloaded
// is not what was pinned.
var ErrChecksum = errors.New("checksum mismatch")

// Fetch returns the path of a in dir, downloading it first unless a file of
// the pinned checksum is already there. A download goes to a temporary file
// that is renamed into place only once its checksum matches, so an
// interrupted or tampered download never lands in the cache.
func Fetch(ctx context.Context, client *http.Client, dir string, a Artifact, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, a.File)
	if a.SHA256 != "" {
		if sum, err := fileSHA256(path); err == nil {
			if sum == a.SHA256 {
				log.Info("using cached "+a.Name, "file", path, "sha256", sum)
				return path, nil
			}
			log.Warn("cached "+a.Name+" does not match its pinned checksum; downloading it again", "file", path, "sha256", sum, "want", a.SHA256)
		}
	}
	want := a.SHA256
	if want == "" {
		sum, err := publishedSHA256(ctx, client, a)
		if err != nil {
			return "", err
		}
		if cached, err := fileSHA256(path); err == nil && cached == sum {
			log.Info("using cached "+a.Name, "file", path, "sha256", sum, "verified against", a.URL+".sha256")
			return path, nil
		}
		log.Warn("no checksum of "+a.Name+" is pinned in drill for this platform; verifying it against the checksum published next to it", "url", a.URL+".sha256", "sha256", sum)
		want = sum
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%s: create cache directory: %w", a.Name, err)
	}
	log.Info("downloading "+a.Name, "url", a.URL, "to", path)
	start := time.Now()
	tmp, err := os.CreateTemp(dir, "."+a.File+".*.part")
	if err != nil {
		return "", fmt.Errorf("%s: %w", a.Name, err)
	}
	defer os.Remove(tmp.Name())
	n, sum, err := download(ctx, client, a.URL, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", downloadError(a, dir, err)
	}
	if sum != want {
		return "", fmt.Errorf("%s: %w: the file downloaded from %s has sha256 %s, not %s; drill refuses to use it (a proxy that rewrites downloads, or a release that was replaced, does this)",
			a.Name, ErrChecksum, a.URL, sum, want)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("%s: %w", a.Name, err)
	}
	log.Info("downloaded "+a.Name, "bytes", n, "sha256", sum, "took", time.Since(start).Round(time.Millisecond))
	return path, nil
}

// download writes url's body to w and returns its length and sha256.
func download(ctx context.Context, client *http.Client, url string, w io.Writer) (int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return n, "", fmt.Errorf("GET %s: %w", url, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// publishedSHA256 reads URL.sha256, the "<hex>  <file>" line Istio publishes
// next to each release archive.
func publishedSHA256(ctx context.Context, client *http.Client, a Artifact) (string, error) {
	var b strings.Builder
	if _, _, err := download(ctx, client, a.URL+".sha256", &b); err != nil {
		return "", downloadError(a, "", err)
	}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	if sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && len(f[0]) == 64 {
			if _, err := hex.DecodeString(f[0]); err == nil {
				return strings.ToLower(f[0]), nil
			}
		}
	}
	return "", fmt.Errorf("%s: %s.sha256 holds no sha256 checksum", a.Name, a.URL)
}

// downloadError explains a failed download: drill needs the network once, and
// what to do without it.
func downloadError(a Artifact, dir string, err error) error {
	msg := fmt.Sprintf("%s: %v: could not download %s: %v; drill downloads it once and keeps it", a.Name, ErrDownload, a.URL, err)
	if dir != "" {
		msg += " in " + dir
	}
	msg += "; on a machine without internet access, download it elsewhere"
	if dir != "" {
		msg += " and put it at " + filepath.Join(dir, a.File)
	}
	if a.SHA256 != "" {
		msg += " (its sha256 must be " + a.SHA256 + ")"
	}
	return &fetchError{msg: msg, err: err}
}

type fetchError struct {
	msg string
	err error
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() []error {
	return []error{ErrDownload, e.err}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
