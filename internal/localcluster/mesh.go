package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Mesh is a set of local clusters under one root CA, each istiod reading the
// others' endpoints through remote secrets (Istio's multi-primary model on
// one network).
type Mesh struct {
	dir      string
	ca       *MeshCA
	clusters []*ControlPlane
}

// StartClusters starts one cluster per name in parallel under a shared mesh
// root CA, each with its own service range (10.96.0.0/16, 10.97.0.0/16, …),
// then wires them for multicluster discovery: every istiod gets a remote
// secret for every other cluster, and StartClusters waits until each istiod
// reports the others synced. On error nothing it started is left running.
//
// Options apply to every cluster; WithServiceCIDR and WithMeshCA are set per
// cluster by StartClusters itself.
func StartClusters(ctx context.Context, names []string, opts ...Option) (_ *Mesh, err error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("start clusters: no cluster names given")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return nil, fmt.Errorf("start clusters: cluster %q named twice", n)
		}
		seen[n] = true
	}
	if len(names) > 100 {
		return nil, fmt.Errorf("start clusters: %d clusters; at most 100 fit the service ranges drill hands out", len(names))
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	// Said once, not once per cluster.
	if _, err := FindBinaries(cfg.binDir, cfg.istiod); err != nil {
		return nil, fmt.Errorf("start clusters: %w", err)
	}
	if cfg.runDir == "" {
		if cfg.runDir, err = os.MkdirTemp("", "drill-local-"); err != nil {
			return nil, fmt.Errorf("start clusters: create run directory: %w", err)
		}
	}
	m := &Mesh{dir: cfg.runDir}
	if cfg.istiod {
		if m.ca, err = NewMeshCA(filepath.Join(cfg.runDir, "mesh-ca")); err != nil {
			return nil, fmt.Errorf("start clusters: %w", err)
		}
	}

	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cfg.stopTimeout+10*time.Second)
			defer cancel()
			if serr := m.Stop(sctx); serr != nil {
				err = errors.Join(err, fmt.Errorf("stopping what had started: %w", serr))
			}
		}
	}()

	// Start all at once: most of a start is waiting on each process's own
	// initialisation, which overlaps well even on two cores.
	planes := make([]*ControlPlane, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		c := cfg
		c.ca = m.ca
		c.serviceCIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(96 + i), 0, 0}), 16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			planes[i], errs[i] = startControlPlane(ctx, name, c)
		}()
	}
	wg.Wait()
	for _, p := range planes {
		if p != nil {
			m.clusters = append(m.clusters, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.istiod && !cfg.noDiscovery && len(m.clusters) > 1 {
		if err := m.wire(ctx, cfg.startTimeout); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// wire creates the remote secrets and waits for every istiod to sync every
// other cluster.
func (m *Mesh) wire(ctx context.Context, timeout time.Duration) error {
	for _, local := range m.clusters {
		for _, remote := range m.clusters {
			if local == remote {
				continue
			}
			if err := CreateRemoteSecret(ctx, local, remote); err != nil {
				return err
			}
		}
	}
	for _, c := range m.clusters {
		if err := WaitRemoteClustersSynced(ctx, c, m.names(), timeout); err != nil {
			return err
		}
	}
	return nil
}

// Clusters are the mesh's clusters, in the order they were named.
func (m *Mesh) Clusters() []*ControlPlane { return slices.Clone(m.clusters) }

// Cluster returns the cluster called name, or nil.
func (m *Mesh) Cluster(name string) *ControlPlane {
	for _, c := range m.clusters {
		if c.name == name {
			return c
		}
	}
	return nil
}

// CA is the mesh's root CA (nil when started WithoutIstiod).
func (m *Mesh) CA() *MeshCA { return m.ca }

// Dir is the run directory holding one directory per cluster and mesh-ca/.
func (m *Mesh) Dir() string { return m.dir }

func (m *Mesh) names() []string {
	out := make([]string, len(m.clusters))
	for i, c := range m.clusters {
		out[i] = c.name
	}
	return out
}

// Stop stops every cluster, all at once, and returns every error.
func (m *Mesh) Stop(ctx context.Context) error {
	errs := make([]error, len(m.clusters))
	var wg sync.WaitGroup
	for i, c := range m.clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
