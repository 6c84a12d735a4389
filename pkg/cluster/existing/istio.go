package existing

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels and variables Istio's multicluster installation sets (istio.io docs:
// setup/install/multicluster/multi-primary_multi-network).
const (
	// NetworkLabel on istio-system names the cluster's network.
	NetworkLabel = "topology.istio.io/network"
	// clusterIDEnv is istiod's cluster ID, set from
	// values.global.multiCluster.clusterName ("Kubernetes" when unset).
	clusterIDEnv = "CLUSTER_ID"
	istiodName   = "istiod"
)

// IstioWant says what a cluster must run for its part in a drill.
type IstioWant struct {
	// Cluster is the scenario's name for the cluster, which must be istiod's
	// cluster ID: drill's translated policy selects endpoints by it.
	Cluster string
	// Ingress: the cluster takes the drill's load, so it needs the ingress
	// gateway.
	Ingress bool
	// EastWest: the mesh spans several networks, so the cluster needs an
	// east-west gateway.
	EastWest bool
}

// IstioFinding is one thing missing or wrong in a cluster's Istio.
type IstioFinding struct {
	// Missing is what is wrong, Fix what to do.
	Missing string
	Fix     string
}

func (f IstioFinding) String() string { return f.Missing + " (" + f.Fix + ")" }

// VerifyIstio checks that Istio runs in the cluster as want needs: the
// istio-system namespace, an available istiod whose cluster ID is
// want.Cluster, the ingress gateway Service when want.Ingress, the east-west
// gateway when want.EastWest. It returns every finding; an error only when
// the API server could not be asked.
func VerifyIstio(ctx context.Context, kube kubernetes.Interface, want IstioWant) ([]IstioFinding, error) {
	var out []IstioFinding
	install := "install Istio as in istio.io's multicluster guide (setup/install/multicluster), or let drill create clusters with --provider kind"
	if _, err := kube.CoreV1().Namespaces().Get(ctx, IstioNamespace, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return []IstioFinding{{Missing: "namespace " + IstioNamespace + " does not exist: Istio is not installed", Fix: install}}, nil
		}
		return nil, fmt.Errorf("get namespace %s: %w", IstioNamespace, err)
	}

	d, err := kube.AppsV1().Deployments(IstioNamespace).Get(ctx, istiodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		out = append(out, IstioFinding{Missing: "deployment " + IstioNamespace + "/" + istiodName + " does not exist", Fix: install})
	case err != nil:
		return nil, fmt.Errorf("get deployment %s/%s: %w", IstioNamespace, istiodName, err)
	default:
		if !deploymentAvailable(d) {
			out = append(out, IstioFinding{
				Missing: fmt.Sprintf("deployment %s/%s has %d of %d replicas available", IstioNamespace, istiodName, d.Status.AvailableReplicas, replicas(d)),
				Fix:     fmt.Sprintf("see `kubectl -n %s describe deployment %s` and its pods' logs", IstioNamespace, istiodName),
			})
		}
		if id := containerEnv(d, "discovery", clusterIDEnv); id != "" && id != want.Cluster {
			out = append(out, IstioFinding{
				Missing: fmt.Sprintf("istiod runs as cluster ID %q, but the scenario calls this cluster %q", id, want.Cluster),
				Fix:     fmt.Sprintf("name the cluster %q in the scenario (drill's policy selects endpoints by Istio's cluster ID)", id),
			})
		}
	}

	if want.Ingress {
		if f, err := gatewayFinding(ctx, kube, IngressGatewayService, "the ingress gateway that takes the drill's load",
			"install Istio's default profile, which includes it"); err != nil {
			return nil, err
		} else if f != nil {
			out = append(out, *f)
		}
	}
	if want.EastWest {
		if f, err := gatewayFinding(ctx, kube, EastWestGatewayName, "the east-west gateway that carries traffic between networks",
			"install it with Istio's samples/multicluster/gen-eastwest-gateway.sh and expose services with samples/multicluster/expose-services.yaml"); err != nil {
			return nil, err
		} else if f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

func gatewayFinding(ctx context.Context, kube kubernetes.Interface, name, what, fix string) (*IstioFinding, error) {
	_, err := kube.CoreV1().Services(IstioNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &IstioFinding{Missing: fmt.Sprintf("service %s/%s, %s, does not exist", IstioNamespace, name, what), Fix: fix}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", IstioNamespace, name, err)
	}
	return nil, nil
}

// IstioNetwork is the network istio-system is labelled with, "" when none.
func IstioNetwork(ctx context.Context, kube kubernetes.Interface) (string, error) {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, IstioNamespace, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return ns.Labels[NetworkLabel], nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas > 0
		}
	}
	return d.Status.AvailableReplicas > 0 && d.Status.AvailableReplicas >= replicas(d)
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// containerEnv is the literal value of variable name in container (or the
// first container when none has that name); "" when not set literally.
func containerEnv(d *appsv1.Deployment, container, name string) string {
	cs := d.Spec.Template.Spec.Containers
	for _, c := range cs {
		if c.Name == container || (len(cs) == 1) {
			for _, e := range c.Env {
				if e.Name == name {
					return e.Value
				}
			}
		}
	}
	return ""
}
