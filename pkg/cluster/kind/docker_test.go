package kind

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNetworkIPAM(t *testing.T) {
	tests := []struct {
		in, subnet, gateway, err string
	}{
		// kind's network: dual stack, IPv6 first on some engines.
		{`[{"Subnet":"fc00:f853:ccd:e793::/64","Gateway":"fc00:f853:ccd:e793::1"},{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]`, "172.18.0.0/16", "172.18.0.1", ""},
		{`[{"Subnet":"172.19.0.0/16","Gateway":"172.19.0.1"}]` + "\n", "172.19.0.0/16", "172.19.0.1", ""},
		{`[{"Subnet":"172.20.0.0/16"}]`, "172.20.0.0/16", "invalid IP", ""},
		{`[{"Subnet":"fc00::/64"}]`, "", "", "no IPv4 subnet"},
		{`null`, "", "", "no IPv4 subnet"},
		{`Error: No such network: kind`, "", "", "IPAM configuration"},
	}
	for _, tt := range tests {
		subnet, gw, err := ParseNetworkIPAM([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseNetworkIPAM(%s) = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || subnet.String() != tt.subnet || gw.String() != tt.gateway {
			t.Errorf("ParseNetworkIPAM(%s) = %s, %s, %v", tt.in, subnet, gw, err)
		}
	}
}

func TestParseDockerPort(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"127.0.0.1:49153\n", "127.0.0.1:49153", ""},
		{"[::]:49153\n0.0.0.0:49153\n", "0.0.0.0:49153", ""},
		{"[::1]:5000\n", "[::1]:5000", ""},
		{"", "", "no published address"},
		{"Error: No public port '30080/tcp' published for drill-cluster1-control-plane\n", "", "no published address"},
	}
	for _, tt := range tests {
		got, err := ParseDockerPort([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDockerPort(%q) = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseDockerPort(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestParseClusterz(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "clusterz.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	status, err := ParseClusterz(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != 3 || status[0].ID != "cluster1" || status[1].SecretName != "istio-system/istio-remote-secret-cluster2" {
		t.Fatalf("clusterz = %+v", status)
	}
	tests := []struct {
		want []string
		out  string
	}{
		{[]string{"cluster1", "cluster2"}, ""},
		{[]string{"cluster1", "cluster2", "cluster3"}, "cluster3=syncing"},
		{[]string{"cluster1", "cluster4"}, "cluster4=missing"},
	}
	for _, tt := range tests {
		if got := strings.Join(Unsynced(status, tt.want), ","); got != tt.out {
			t.Errorf("Unsynced(%v) = %q, want %q", tt.want, got, tt.out)
		}
	}
	if _, err := ParseClusterz(strings.NewReader("<html>")); err == nil {
		t.Error("ParseClusterz of HTML succeeded")
	}
}

// TestKubeletJournal: the kubelet's last log lines are read from the node with
// docker exec; a node that cannot be read gives nothing rather than an error.
func TestKubeletJournal(t *testing.T) {
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$1 $2 $3 $4 $5" = "exec drill-cluster1-control-plane journalctl -u kubelet" ] || { echo "unexpected: $*" >&2; exit 1; }
printf 'E1205 run.go:72] "command failed" err="failed to run Kubelet: cgroup v1 support is unsupported"\n'
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "docker")
	got := kubeletJournal(context.Background(), bin, "drill-cluster1-control-plane")
	if !strings.Contains(got, "cgroup v1 support is unsupported") {
		t.Errorf("journal = %q, want the kubelet's last line", got)
	}
	if got := kubeletJournal(context.Background(), bin, "gone"); got != "" {
		t.Errorf("journal of a node docker cannot exec into = %q, want empty", got)
	}
}
