package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
)

// IstioVersioner is implemented by the Access of clusters whose istiod is not
// a Deployment with an image tag to read (the local provider's process): it
// asks istiod itself.
type IstioVersioner interface {
	IstioVersion(ctx context.Context) (string, error)
}

// recordVersions publishes what each cluster runs (event.ClusterVersions), for
// the report. A version that cannot be told is left out, with why; it never
// stops a drill.
func (r *run) recordVersions(ctx context.Context) {
	for _, name := range clusterNames(r.s) {
		c, ok := r.clusters[name]
		if !ok {
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := clusterVersions(vctx, c)
		cancel()
		if err != nil {
			v.Error = err.Error()
		}
		r.bus.Publish(event.New(event.ClusterVersions, c.Name, "engine", v))
	}
}

// clusterVersions asks a cluster's API server for its version and finds istiod's.
func clusterVersions(ctx context.Context, c *cluster.Cluster) (event.Versions, error) {
	var v event.Versions
	var errs []error
	if c.Kube != nil {
		if sv, err := c.Kube.Discovery().ServerVersion(); err != nil {
			errs = append(errs, fmt.Errorf("kubernetes version: %w", err))
		} else {
			v.Kubernetes = sv.GitVersion
		}
	}
	if iv, ok := c.Access.(IstioVersioner); ok {
		ver, err := iv.IstioVersion(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("istio version: %w", err))
		}
		v.Istio = ver
	} else if c.Kube != nil {
		ver, err := istiodImageTag(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("istio version: %w", err))
		}
		v.Istio = ver
	}
	return v, errors.Join(errs...)
}

// istiodImageTag is the tag of istiod's image (docker.io/istio/pilot:1.31.1),
// as istioctl installs it: Deployment istiod in istio-system, or any
// Deployment there labelled app=istiod (a revision's).
func istiodImageTag(ctx context.Context, c *cluster.Cluster) (string, error) {
	deps, err := c.Kube.AppsV1().Deployments("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return "", err
	}
	for _, d := range deps.Items {
		for _, ctr := range d.Spec.Template.Spec.Containers {
			if tag := imageTag(ctr.Image); tag != "" {
				return tag, nil
			}
		}
	}
	return "", errors.New("no istiod Deployment (app=istiod) in istio-system")
}

// imageTag is the tag of an image reference, without a digest; "" when the
// reference has none.
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return "" // a registry's port, not a tag
	}
	return image[i+1:]
}
