package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// DefaultDockerTimeout bounds `docker info`. A healthy daemon answers in well
// under a second; one that takes longer is stuck or starting.
const DefaultDockerTimeout = 15 * time.Second

// MinDockerVersion is the oldest Docker engine drill accepts: 20.10 brought
// cgroup v2 support, which kind's node images need on current Linux
// distributions (kind docs: known-issues).
const MinDockerVersion = "20.10"

// DockerInfo is what drill reads from `docker info`.
type DockerInfo struct {
	ServerVersion   string
	OSType          string
	Architecture    string
	OperatingSystem string
	NCPU            int
	MemTotal        int64
	CgroupVersion   string
	// Rootless is true for a rootless engine, which kind supports with extra
	// host setup (kind docs: user/rootless).
	Rootless bool
}

func (i *DockerInfo) String() string {
	return fmt.Sprintf("Docker %s on %s (%s/%s), %d CPUs, %s memory", i.ServerVersion, i.OperatingSystem, i.OSType, i.Architecture, i.NCPU, FormatBytes(i.MemTotal))
}

// dockerInfoJSON is the subset of `docker info --format '{{json .}}'` drill
// reads (docker/cli, types/system.Info).
type dockerInfoJSON struct {
	ServerVersion   string
	OSType          string
	Architecture    string
	OperatingSystem string
	NCPU            int
	MemTotal        int64
	CgroupVersion   string
	SecurityOptions []string
	// ServerErrors is set, with exit code 0 in some CLI versions, when the
	// client could not reach the daemon.
	ServerErrors []string
}

// DockerOption tunes Docker.
type DockerOption func(*dockerConfig)

type dockerConfig struct {
	binary  string
	timeout time.Duration
}

// WithDockerBinary runs name instead of "docker" (looked up on PATH).
func WithDockerBinary(name string) DockerOption { return func(c *dockerConfig) { c.binary = name } }

// WithDockerTimeout bounds `docker info` (default DefaultDockerTimeout).
func WithDockerTimeout(d time.Duration) DockerOption { return func(c *dockerConfig) { c.timeout = d } }

const installDocker = "install Docker (https://docs.docker.com/engine/install/ on Linux, Docker Desktop on macOS) so that `docker info` works — on a Debian or Ubuntu machine you are root on, `make docker` in the drill checkout installs and starts one — or run the drill on the local provider (--provider local), which needs no Docker"

// Docker checks that the docker CLI is on PATH and that its daemon answers
// `docker info` within the timeout, and returns what the daemon reports. Its
// errors are *Problem values that say what to do.
func Docker(ctx context.Context, opts ...DockerOption) (*DockerInfo, error) {
	cfg := dockerConfig{binary: "docker", timeout: DefaultDockerTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	path, err := exec.LookPath(cfg.binary)
	if err != nil {
		return nil, Fail(installDocker, "the %s CLI is not on PATH (the kind provider runs each Kubernetes node as a Docker container)", cfg.binary)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "info", "--format", "{{json .}}")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A CLI that hangs after being killed must not hold the check: its pipes are
	// abandoned a second after the kill.
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, Fail("the Docker daemon is not responding: restart it (Docker Desktop, or `sudo systemctl restart docker`) and check that `docker info` answers",
			"`%s info` did not answer within %s", cfg.binary, cfg.timeout)
	}
	var info dockerInfoJSON
	jsonErr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &info)
	if runErr != nil || len(info.ServerErrors) > 0 || info.ServerVersion == "" {
		why := firstLine(stderr.String())
		if why == "" && len(info.ServerErrors) > 0 {
			why = firstLine(info.ServerErrors[0])
		}
		if why == "" && runErr != nil {
			why = runErr.Error()
		}
		if why == "" && jsonErr != nil {
			why = "its output is not JSON: " + jsonErr.Error()
		}
		if why == "" {
			why = "it reports no server version"
		}
		return nil, Fail("start the Docker daemon (Docker Desktop, `sudo systemctl start docker`, or `make docker` in the drill checkout where there is no systemd) and make sure your user may use it without sudo (on Linux: add it to the docker group and log in again); `docker info` must succeed",
			"the Docker daemon is not reachable: `%s info` failed: %s", cfg.binary, why)
	}
	out := &DockerInfo{
		ServerVersion:   info.ServerVersion,
		OSType:          info.OSType,
		Architecture:    info.Architecture,
		OperatingSystem: info.OperatingSystem,
		NCPU:            info.NCPU,
		MemTotal:        info.MemTotal,
		CgroupVersion:   info.CgroupVersion,
	}
	for _, o := range info.SecurityOptions {
		if strings.Contains(o, "rootless") {
			out.Rootless = true
		}
	}
	return out, nil
}

// CheckDockerEngine checks what kind needs of the engine itself: Linux
// containers and a version no older than MinDockerVersion.
func CheckDockerEngine(info *DockerInfo) error {
	if info.OSType != "" && info.OSType != "linux" {
		return Fail("switch Docker to Linux containers (Docker Desktop: \"Switch to Linux containers\")",
			"the Docker engine runs %s containers; kind's nodes are Linux containers", info.OSType)
	}
	if !versionAtLeast(info.ServerVersion, MinDockerVersion) {
		return Fail("upgrade the Docker engine to "+MinDockerVersion+" or later",
			"Docker %s is older than %s, the oldest engine whose cgroup support kind's node images work with", info.ServerVersion, MinDockerVersion)
	}
	return nil
}

// versionAtLeast compares the leading numeric components of two versions
// ("27.3.1", "20.10"); a version it cannot read passes, since engines from
// other vendors name their versions differently and kind itself will say
// what it lacks.
func versionAtLeast(have, min string) bool {
	h, ok := leadingNumbers(have)
	if !ok {
		return true
	}
	m, _ := leadingNumbers(min)
	for i := range m {
		var x int
		if i < len(h) {
			x = h[i]
		}
		if x != m[i] {
			return x > m[i]
		}
	}
	return true
}

func leadingNumbers(v string) ([]int, bool) {
	v = strings.TrimPrefix(v, "v")
	var out []int
	for _, part := range strings.Split(v, ".") {
		end := 0
		for end < len(part) && part[end] >= '0' && part[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, err := strconv.Atoi(part[:end])
		if err != nil {
			break
		}
		out = append(out, n)
		if end < len(part) {
			break
		}
	}
	return out, len(out) > 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
