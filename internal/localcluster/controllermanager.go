package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
)

// startControllerManager runs kube-controller-manager with the controllers
// in cfg.controllers. It does not wait for it to be healthy: the caller does
// that with waitControllerManager, so the wait overlaps other work.
func (cp *ControlPlane) startControllerManager() (*process, error) {
	return cp.start("kube-controller-manager", cp.dir, nil, cp.bins.ControllerManager,
		"--kubeconfig="+cp.kubeconfigPath,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", cp.ports.controllerManager),
		"--cert-dir="+filepath.Join(cp.dir, "pki", "controller-manager"),
		// Signs the tokens of the legacy token controller and publishes the
		// cluster CA to every namespace as kube-root-ca.crt.
		"--service-account-private-key-file="+cp.pki.saKey,
		"--root-ca-file="+cp.pki.caCert,
		"--cluster-signing-cert-file="+cp.pki.caCert,
		"--cluster-signing-key-file="+cp.pki.caKey,
		"--controllers="+strings.Join(cp.cfg.controllers, ","),
		// One controller-manager per cluster: nothing to elect, and election
		// would delay the controllers by a lease period.
		"--leader-elect=false",
		// At -v=1 and above both print every flag at start, burying the
		// error a failed start ends with.
		"--v=0",
	)
}

func (cp *ControlPlane) waitControllerManager(ctx context.Context, p *process) error {
	// The serving certificate is self-signed by the controller-manager at
	// start-up; the check only asks whether our own child on loopback is up.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", cp.ports.controllerManager)
	return p.waitReady(ctx, cp.cfg.startTimeout, "kube-controller-manager /healthz ok", func(ctx context.Context) error {
		return httpOK(ctx, client, url)
	})
}

// httpOK GETs url and wants a 200.
func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
