package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// IstiodVersion asks the cluster's istiod for its version at its monitoring
// port's /version (istio.io/istio pilot/pkg/bootstrap/monitoring.go), where it
// writes its version.BuildInfo.String(): VERSION-GITREVISION-BUILDSTATUS.
func (cp *ControlPlane) IstiodVersion(ctx context.Context) (string, error) {
	if !cp.HasIstiod() {
		return "", fmt.Errorf("cluster %s runs no istiod", cp.name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cp.IstiodMonitoringURL()+"/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("istiod of %s: %w", cp.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("istiod of %s: %w", cp.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("istiod of %s: /version: %s", cp.name, resp.Status)
	}
	return ParseIstiodVersion(string(body))
}

// buildInfoRE splits Istio's BuildInfo.String() (istio.io/istio
// pkg/version): the version may hold '-' itself (1.31-dev,
// v0.0.0-20260827124520-eed52ebb66ad), the git revision and the build status
// after it do not.
var buildInfoRE = regexp.MustCompile(`^(.+)-([0-9a-f]{7,40}|unknown)-([A-Za-z]+)$`)

// ParseIstiodVersion takes the version out of what istiod's /version answers.
func ParseIstiodVersion(s string) (string, error) {
	s = strings.TrimSpace(s)
	m := buildInfoRE.FindStringSubmatch(s)
	if m == nil || m[1] == "unknown" {
		return "", fmt.Errorf("istiod's /version answered %q, not VERSION-REVISION-STATUS", truncate(s, 80))
	}
	return m[1], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
