package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServes builds the command and runs it as a container would: reviews v1
// answers on the address it is given, names its pod and cluster from the
// environment, and stops on SIGTERM.
func TestServes(t *testing.T) {
	bin := t.TempDir() + "/bookinfo"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "reviews", "v1")
	cmd.Env = []string{"BOOKINFO_ADDR=" + addr, "HOSTNAME=reviews-v1-abc", "CLUSTER_NAME=cluster1"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var body struct {
		PodName     string `json:"podname"`
		ClusterName string `json:"clustername"`
	}
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/reviews/0", addr))
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /reviews/0: %d, %v", resp.StatusCode, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("reviews never answered on %s: %v\n%s", addr, err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if body.PodName != "reviews-v1-abc" || body.ClusterName != "cluster1" {
		t.Errorf("answer names pod %q in %q, want reviews-v1-abc in cluster1", body.PodName, body.ClusterName)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
}

func TestUsage(t *testing.T) {
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("run() = %v, want the usage", err)
	}
	if err := run([]string{"reviews", "v9"}); err == nil {
		t.Error("run(reviews v9) succeeded, want an error for a version drill does not run")
	}
}
