package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pushgatewayBinary is bin/pushgateway (hack/build-tools.sh builds it), or
// the Pushgateway built here from tools/pushgateway; the test is skipped only
// when neither can be had.
func pushgatewayBinary(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs("../../bin/pushgateway"); err == nil {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	out := filepath.Join(t.TempDir(), "pushgateway")
	cmd := exec.Command("go", "build", "-o", out, "github.com/prometheus/pushgateway")
	cmd.Dir = "../../tools/pushgateway"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("no bin/pushgateway and building it from tools/pushgateway failed (make tools builds it): %v\n%s", err, b)
	}
	return out
}

// startPushgateway runs a Pushgateway on a free loopback port until the test
// ends and returns its URL once it answers /-/ready.
func startPushgateway(t *testing.T) string {
	t.Helper()
	bin := pushgatewayBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs strings.Builder
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the Pushgateway exited before it was ready: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Pushgateway at %s was not ready within 30s: %v\n%s", url, err, logs.String())
		}
	}
}

// TestPushgateway pushes a run's metrics to a real Pushgateway (drill report
// --pushgateway; drill run pushes the same way) and reads them back from it.
func TestPushgateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a Pushgateway")
	}
	url := startPushgateway(t)
	_, dirs := nightlyRuns(t, 2)
	for _, d := range dirs {
		if code, _, stderr := runCLI(t, "report", "-q", "--pushgateway", url, d); code != exitPass || !strings.Contains(stderr, "pushed the metrics of") {
			t.Fatalf("drill report --pushgateway: exit %d: %s", code, stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	exposed := string(body)
	// The second run's push replaced the first's: one group per scenario and provider.
	group := `instance="",job="drill",provider="local",run="reviews-failover-20261112-210000",scenario="reviews-failover"`
	for _, want := range []string{
		fmt.Sprintf(`drill_verdict{%s,verdict="pass"} 1`, group),
		`drill_expectation_observed_seconds{expectation="failover-fast",instance="",job="drill",kind="failover",measure="failover time",provider="local",run="reviews-failover-20261112-210000",scenario="reviews-failover"} 2.4`,
		`push_time_seconds{instance="",job="drill",provider="local",scenario="reviews-failover"}`,
	} {
		if !strings.Contains(exposed, want) {
			t.Errorf("the Pushgateway does not serve\n  %s\nin:\n%s", want, grep(exposed, "drill_verdict", "failover-fast", "push_time"))
		}
	}
	if strings.Contains(exposed, "20261111-210000") {
		t.Errorf("the first run's metrics are still served after the second run's push")
	}
	// A Pushgateway that is not there: the reports are written, a pass exits 2.
	code, _, stderr := runCLI(t, "report", "-q", "--pushgateway", "http://127.0.0.1:1", dirs[0])
	if code != exitError || !strings.Contains(stderr, "push the metrics of") {
		t.Errorf("push to nowhere: exit %d: %s", code, stderr)
	}
}

func grep(s string, words ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
