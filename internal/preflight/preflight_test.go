package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeDocker puts an executable "docker" running script on a PATH of its own
// and returns that directory. The script is a real process run by the real
// exec path of Docker(); it names every other program by absolute path, since
// PATH holds nothing else.
func fakeDocker(t *testing.T, script string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell-script stand-ins for docker need a POSIX shell")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDocker(t *testing.T) {
	daemonDown := "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
	tests := []struct {
		name    string
		script  string // "" leaves PATH without docker
		timeout time.Duration
		want    []string // substrings of the problem; nil for success
	}{
		{
			name: "no docker on PATH",
			want: []string{"the docker CLI is not on PATH", "install Docker", "--provider local"},
		},
		{
			name:   "daemon down, error on stderr",
			script: `echo "` + daemonDown + `" >&2; exit 1`,
			want:   []string{"the Docker daemon is not reachable", daemonDown, "start the Docker daemon", "docker group"},
		},
		{
			name:   "daemon down, server errors in the JSON",
			script: `echo '{"ID":"","ServerErrors":["` + daemonDown + `"],"ClientInfo":{"Version":"27.3.1"}}'; exit 0`,
			want:   []string{"the Docker daemon is not reachable", daemonDown},
		},
		{
			name:   "permission denied",
			script: `echo "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock" >&2; exit 1`,
			want:   []string{"permission denied", "without sudo"},
		},
		{
			name:    "daemon hangs",
			script:  `exec /bin/sleep 30`,
			timeout: 300 * time.Millisecond,
			want:    []string{"did not answer within 300ms", "not responding"},
		},
		{
			name:   "not JSON",
			script: `echo 'Client: Docker Engine'; exit 0`,
			want:   []string{"not reachable", "not JSON"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.script == "" {
				t.Setenv("PATH", t.TempDir())
			} else {
				fakeDocker(t, tt.script)
			}
			opts := []DockerOption{}
			if tt.timeout > 0 {
				opts = append(opts, WithDockerTimeout(tt.timeout))
			}
			start := time.Now()
			info, err := Docker(context.Background(), opts...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Docker took %s", took)
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Docker = %v, %v; want a *Problem", info, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.Error(), w) {
					t.Errorf("problem %q lacks %q", p.Error(), w)
				}
			}
		})
	}
}

func TestDockerInfo(t *testing.T) {
	fakeDocker(t, `[ "$1 $2 $3" = "info --format {{json .}}" ] || { echo "unexpected arguments: $*" >&2; exit 2; }; exec /bin/cat `+testdata(t, "docker-info.json"))
	info, err := Docker(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := DockerInfo{ServerVersion: "27.3.1", OSType: "linux", Architecture: "x86_64", OperatingSystem: "Ubuntu 24.04.1 LTS",
		NCPU: 4, MemTotal: 16765468672, CgroupVersion: "2"}
	if *info != want {
		t.Fatalf("info = %+v, want %+v", *info, want)
	}
	if got := info.String(); got != "Docker 27.3.1 on Ubuntu 24.04.1 LTS (linux/x86_64), 4 CPUs, 15.6 GiB memory" {
		t.Errorf("String() = %q", got)
	}
	if err := CheckDockerEngine(info); err != nil {
		t.Error(err)
	}
}

func TestCheckDockerEngine(t *testing.T) {
	tests := []struct {
		version, os string
		want        string
	}{
		{"27.3.1", "linux", ""},
		{"20.10.0", "linux", ""},
		{"v28.0.0-rc.1", "linux", ""},
		{"4.9.4-podman", "linux", "older than 20.10"},
		{"19.03.15", "linux", "Docker 19.03.15 is older than 20.10"},
		{"27.3.1", "windows", "runs windows containers"},
		{"unknown", "linux", ""},
	}
	for _, tt := range tests {
		err := CheckDockerEngine(&DockerInfo{ServerVersion: tt.version, OSType: tt.os})
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckDockerEngine(%s, %s) = %v, want %q", tt.version, tt.os, err, tt.want)
		}
	}
}

func TestCheckResources(t *testing.T) {
	tests := []struct {
		clusters int
		cpus     int
		mem      int64
		want     string
		warning  bool // too few CPUs only: the drill runs, slowly
	}{
		{2, 4, 16 * gib, "", false},
		{2, 3, 7 * gib, "", false},
		{3, 4, 10 * gib, "", false},
		{2, 2, 16 * gib, "a drill of 2 kind clusters wants 3 CPUs (it has 2): the clusters will start slowly", true},
		{2, 8, 4 * gib, "7.0 GiB of memory (it has 4.0 GiB)", false},
		{3, 2, 2 * gib, "needs 4 CPUs (it has 2) and 10.0 GiB of memory (it has 2.0 GiB)", false},
		// An engine that reports nothing is not refused for it.
		{2, 0, 0, "", false},
	}
	for _, tt := range tests {
		err := CheckResources(&DockerInfo{NCPU: tt.cpus, MemTotal: tt.mem}, Requirements(tt.clusters))
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%d clusters on %d CPUs/%s: %v, want %q", tt.clusters, tt.cpus, FormatBytes(tt.mem), err, tt.want)
		}
		if err != nil && IsWarning(err) != tt.warning {
			t.Errorf("%d clusters on %d CPUs/%s: warning %v, want %v", tt.clusters, tt.cpus, FormatBytes(tt.mem), IsWarning(err), tt.warning)
		}
		if err != nil && !strings.Contains(err.Error(), "Settings → Resources") {
			t.Errorf("problem %q does not say where to change it", err)
		}
	}
}

func TestCheckInotify(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inotify limits are checked on Linux only")
	}
	dir := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("max_user_watches", "8192")
	write("max_user_instances", "128")
	err := CheckInotify(dir)
	var w *warning
	if !errors.As(err, &w) || !strings.Contains(err.Error(), "fs.inotify.max_user_watches=8192 (kind recommends 524288)") ||
		!strings.Contains(err.Error(), "max_user_instances=128") {
		t.Fatalf("CheckInotify = %v", err)
	}
	write("max_user_watches", "1048576")
	write("max_user_instances", "8192")
	if err := CheckInotify(dir); err != nil {
		t.Fatalf("CheckInotify with high limits = %v", err)
	}
	if err := CheckInotify(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("CheckInotify without the files = %v", err)
	}
}

func TestCheckNodeImage(t *testing.T) {
	for image, ok := range map[string]bool{
		"kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5":           true,
		"registry.example.com/kind/node@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5": true,
		"kindest/node:v1.37.0":        false,
		"kindest/node:latest":         false,
		"kindest/node@sha256:abc":     false,
		"kindest/node:v1.37.0@sha256": false,
	} {
		err := CheckNodeImage(image)
		if ok != (err == nil) {
			t.Errorf("CheckNodeImage(%q) = %v", image, err)
		}
	}
}

func TestRun(t *testing.T) {
	var log bytes.Buffer
	ran := map[string]bool{}
	check := func(name string, err error, after ...string) Check {
		return Check{Name: name, After: after, Run: func(context.Context) (string, error) {
			ran[name] = true
			return "found " + name, err
		}}
	}
	err := Run(context.Background(), []Check{
		check("docker", Fail("start it", "daemon down")),
		check("resources", nil, "docker"),
		check("inotify", Warn("raise them", "low limits")),
		check("istioctl", errors.New("download failed: no route to host")),
		check("node-image", nil),
	}, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))

	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want *Error", err)
	}
	if pe.ExitCode() != 2 || !errors.Is(err, &Error{}) {
		t.Errorf("ExitCode %d, errors.Is %v", pe.ExitCode(), errors.Is(err, &Error{}))
	}
	if ran["resources"] {
		t.Error("resources ran although docker, which it needs, failed")
	}
	if !ran["node-image"] || !ran["istioctl"] {
		t.Error("checks after a failure did not run")
	}
	want := `preflight failed, 2 problems:
  - docker: daemon down; start it
  - istioctl: download failed: no route to host`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	for _, line := range []string{
		`level=ERROR msg="preflight: failed" check=docker problem="daemon down" fix="start it"`,
		`level=INFO msg="preflight: skipped" check=resources`,
		`level=WARN msg="preflight: warning" check=inotify problem="low limits" fix="raise them"`,
		`level=INFO msg="preflight: ok" check=node-image found="found node-image"`,
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, log.String())
		}
	}

	if err := Run(context.Background(), []Check{check("a", nil), check("b", Warn("x", "y"))}); err != nil {
		t.Errorf("Run with only passes and warnings = %v", err)
	}
	one := Run(context.Background(), []Check{check("docker", Fail("fix it", "broken"))})
	if one.Error() != "preflight failed: docker: broken; fix it" {
		t.Errorf("one problem: %q", one)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, []Check{check("a", nil)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v", err)
	}
}

func ExampleError() {
	err := Run(context.Background(), []Check{{
		Name: "docker",
		Run: func(context.Context) (string, error) {
			return "", Fail("start the Docker daemon", "`docker info` failed: Cannot connect to the Docker daemon")
		},
	}})
	var pe *Error
	if errors.As(err, &pe) {
		fmt.Println(pe.ExitCode(), err)
	}
	// Output: 2 preflight failed: docker: `docker info` failed: Cannot connect to the Docker daemon; start the Docker daemon
}

// TestRequirementsWithoutMesh: clusters without Istio need less, and two of
// them fit a 2-CPU engine that the full seed does not.
func TestRequirementsWithoutMesh(t *testing.T) {
	info := &DockerInfo{NCPU: 2, MemTotal: 8 << 30}
	if err := CheckResources(info, Requirements(2)); err == nil || !IsWarning(err) {
		t.Errorf("the seed with Istio on 2 CPUs: %v; want a warning that it wants 3", err)
	}
	if err := CheckResources(info, RequirementsEmulatedMesh(2)); err != nil {
		t.Errorf("two clusters with the emulated mesh on 2 CPUs and 8 GiB: %v", err)
	}
	if err := CheckResources(info, RequirementsWithoutMesh(2)); err != nil {
		t.Errorf("two clusters without a mesh on 2 CPUs and 8 GiB: %v", err)
	}
	if n := RequirementsWithoutMesh(3); n.CPUs <= RequirementsWithoutMesh(1).CPUs || n.Memory <= RequirementsWithoutMesh(1).Memory {
		t.Errorf("needs do not grow with clusters: %+v", n)
	}
}
