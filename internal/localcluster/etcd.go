package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
)

// startEtcd runs a single-member etcd for the cluster, listening only on
// loopback, with its data under the cluster directory.
func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", cp.ports.etcdClient)
	peer := fmt.Sprintf("http://127.0.0.1:%d", cp.ports.etcdPeer)
	p, err := cp.start("etcd", cp.dir, nil, cp.bins.Etcd,
		"--name", "default",
		"--data-dir", filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		// The peer port is unused by a single member, but etcd binds one
		// (2380 by default), so each cluster needs its own.
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default="+peer,
		"--initial-cluster-state", "new",
		// Keep a drill's small database small and quick to snapshot.
		"--snapshot-count", "10000",
		"--quota-backend-bytes", fmt.Sprint(2<<30),
		"--log-level", "warn",
		"--logger", "zap",
	)
	if err != nil {
		return err
	}
	return p.waitReady(ctx, cp.cfg.startTimeout, "etcd /health ok", func(ctx context.Context) error {
		return etcdHealthy(ctx, client)
	})
}

// etcdHealthy asks etcd's /health endpoint, which answers {"health":"true"}
// once the member has a leader.
func etcdHealthy(ctx context.Context, clientURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"true"`) {
		return fmt.Errorf("etcd /health: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
