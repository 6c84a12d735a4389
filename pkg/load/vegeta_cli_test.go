package load

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vegetaCLI is the vegeta command hack/build-tools.sh builds into bin/ from
// tools/vegeta (make tools), or skips the test saying so.
func vegetaCLI(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../bin/vegeta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no %s: make tools builds it from tools/vegeta", p)
	}
	return p
}

// TestResultsFileWithVegetaCLI reads a drill load's results file with the real
// vegeta command, as an SRE would: `vegeta report` counts the same requests
// and status codes as drill and finds the same percentiles, `vegeta encode`
// gives one JSON result per request, `vegeta plot` draws it.
func TestResultsFileWithVegetaCLI(t *testing.T) {
	vegetaBin := vegetaCLI(t)
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		// A spread of latencies, so percentiles differ: 1 ms to about 40 ms.
		time.Sleep(time.Duration(1+seq%40) * time.Millisecond)
		if seq%7 == 0 {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	path := filepath.Join(t.TempDir(), "results.bin")
	total, _ := run(t, Target{URL: srv.URL}, WithRate(Constant(perSec(100))), WithDuration(2*time.Second), WithResultsFile(path))

	out, err := exec.Command(vegetaBin, "report", "-type=json", path).Output()
	if err != nil {
		t.Fatalf("vegeta report: %v", err)
	}
	var rep struct {
		Requests  int64 `json:"requests"`
		Latencies struct {
			P50 time.Duration `json:"50th"`
			P90 time.Duration `json:"90th"`
			P99 time.Duration `json:"99th"`
			Max time.Duration `json:"max"`
		} `json:"latencies"`
		StatusCodes map[string]int64 `json:"status_codes"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("vegeta report -type=json: %v\n%s", err, out)
	}
	if rep.Requests != total.Requests {
		t.Errorf("vegeta counts %d requests, drill %d", rep.Requests, total.Requests)
	}
	for code, n := range total.Codes {
		if rep.StatusCodes[code] != n {
			t.Errorf("status %s: vegeta %d, drill %d", code, rep.StatusCodes[code], n)
		}
	}
	// drill's percentiles come from an HDR histogram (3 significant digits),
	// vegeta's from its own estimator: they agree within a few percent.
	near := func(name string, v, d time.Duration) {
		if diff := math.Abs(float64(v - d)); diff > 0.05*float64(d)+float64(time.Millisecond) {
			t.Errorf("%s: vegeta %v, drill %v", name, v, d)
		}
	}
	near("p50", rep.Latencies.P50, total.P50)
	near("p90", rep.Latencies.P90, total.P90)
	near("p99", rep.Latencies.P99, total.P99)
	near("max", rep.Latencies.Max, total.Max)

	enc, err := exec.Command(vegetaBin, "encode", "-to", "json", path).Output()
	if err != nil {
		t.Fatalf("vegeta encode: %v", err)
	}
	if n := strings.Count(strings.TrimSpace(string(enc)), "\n") + 1; int64(n) != total.Requests {
		t.Errorf("vegeta encode gives %d results, drill counted %d requests", n, total.Requests)
	}

	plot, err := exec.Command(vegetaBin, "plot", "-title", "drill load", path).Output()
	if err != nil {
		t.Fatalf("vegeta plot: %v", err)
	}
	if !strings.Contains(string(plot), "drill load") || len(plot) < 1000 {
		t.Errorf("vegeta plot wrote %d bytes without the title", len(plot))
	}
}
