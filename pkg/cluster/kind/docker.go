package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// dockerNetwork is the Docker network kind puts its nodes on: "kind", unless
// kind's KIND_EXPERIMENTAL_DOCKER_NETWORK says otherwise.
func dockerNetwork() string {
	if n := os.Getenv("KIND_EXPERIMENTAL_DOCKER_NETWORK"); n != "" {
		return n
	}
	return "kind"
}

// docker runs the docker CLI, as the kind library does, and returns its
// standard output; the error carries what it printed on standard error.
func docker(ctx context.Context, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, firstLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// ipamConfig is one entry of `docker network inspect NET --format
// '{{json .IPAM.Config}}'`.
type ipamConfig struct {
	Subnet  string
	Gateway string
}

// ParseNetworkIPAM returns the IPv4 subnet and gateway of a Docker network
// from the JSON of its IPAM configuration. kind's network is dual-stack, so
// the IPv6 entry is skipped.
func ParseNetworkIPAM(data []byte) (subnet netip.Prefix, gateway netip.Addr, err error) {
	var cfgs []ipamConfig
	if err := json.Unmarshal(bytes.TrimSpace(data), &cfgs); err != nil {
		return subnet, gateway, fmt.Errorf("read the network's IPAM configuration: %w", err)
	}
	for _, c := range cfgs {
		p, err := netip.ParsePrefix(c.Subnet)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		var gw netip.Addr
		if c.Gateway != "" {
			if gw, err = netip.ParseAddr(c.Gateway); err != nil {
				return subnet, gateway, fmt.Errorf("gateway %q: %w", c.Gateway, err)
			}
		}
		return p.Masked(), gw, nil
	}
	return subnet, gateway, fmt.Errorf("the network has no IPv4 subnet (its IPAM configuration: %s)", bytes.TrimSpace(data))
}

// kindSubnet asks Docker for the kind network's IPv4 subnet and gateway.
func kindSubnet(ctx context.Context, bin string) (netip.Prefix, netip.Addr, error) {
	out, err := docker(ctx, bin, "network", "inspect", dockerNetwork(), "--format", "{{json .IPAM.Config}}")
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, err
	}
	p, gw, err := ParseNetworkIPAM(out)
	if err != nil {
		return p, gw, fmt.Errorf("docker network %s: %w", dockerNetwork(), err)
	}
	return p, gw, nil
}

// ParseDockerPort reads `docker port CONTAINER PORT/tcp`, one HOST:PORT per
// line ("127.0.0.1:49153", "[::]:49153"), and returns the first IPv4 one.
func ParseDockerPort(data []byte) (netip.AddrPort, error) {
	var first netip.AddrPort
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
		if err != nil {
			continue
		}
		if ap.Addr().Is4() {
			return ap, nil
		}
		if !first.IsValid() {
			first = ap
		}
	}
	if first.IsValid() {
		return first, nil
	}
	return netip.AddrPort{}, fmt.Errorf("no published address in %q", strings.TrimSpace(string(data)))
}

// hostPort is the address on the host that container's port is published at.
func hostPort(ctx context.Context, bin, container string, port int) (netip.AddrPort, error) {
	out, err := docker(ctx, bin, "port", container, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := ParseDockerPort(out)
	if err != nil {
		return ap, fmt.Errorf("docker port %s %d/tcp: %w", container, port, err)
	}
	return ap, nil
}

// kubeletJournalLines is how much of a failed node's kubelet log an error
// carries: enough for the reason, which kubelet logs last.
const kubeletJournalLines = 25

// kubeletJournal returns the last lines of the kubelet's log on a node
// container, "" when it cannot be read (the container is gone or never ran
// systemd).
func kubeletJournal(ctx context.Context, bin, node string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := docker(ctx, bin, "exec", node, "journalctl", "-u", "kubelet", "--no-pager", "-o", "cat", "-n", strconv.Itoa(kubeletJournalLines))
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(out), "\n")
}
