package existing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/translate"
)

// Istio's default gateways (istio.io docs: setup/install/multicluster; the
// default profile's istio-ingressgateway; samples/multicluster/gen-eastwest-gateway.sh).
const (
	IstioNamespace        = "istio-system"
	IngressGatewayService = "istio-ingressgateway"
	EastWestGatewayName   = "istio-eastwestgateway"
	// EnvoyAdminPort is where an Istio sidecar's Envoy serves its admin API,
	// on localhost only, hence the port-forward.
	EnvoyAdminPort = 15000
	// ingressTargetPort is the ingress gateway's container port for plain
	// HTTP, the one Bookinfo's Gateway listens on (bookinfo.GatewayPort).
	ingressTargetPort = 8080
)

// DefaultAddressTimeout bounds the wait for a gateway's LoadBalancer address.
const DefaultAddressTimeout = 2 * time.Minute

// Access reaches a real cluster from where drill runs: the ingress gateway at
// its LoadBalancer address (or a URL the user or provider gives), and pods'
// Envoy admin ports through port-forwards. It implements cluster.Access; the
// kind provider uses it too.
type Access struct {
	name       string
	cfg        *rest.Config
	kube       kubernetes.Interface
	ingressURL func(context.Context) (string, error)
	timeout    time.Duration
	log        *slog.Logger
}

var _ cluster.Access = (*Access)(nil)

// AccessOption tunes NewAccess.
type AccessOption func(*Access)

// WithIngressURL makes Ingress return url (e.g. http://127.0.0.1:8080 for a
// gateway reached through a host port mapping or a tunnel) instead of the
// gateway Service's LoadBalancer address.
func WithIngressURL(url string) AccessOption {
	return func(a *Access) {
		a.ingressURL = func(context.Context) (string, error) { return url, nil }
	}
}

// WithIngressResolver makes Ingress ask f for the URL.
func WithIngressResolver(f func(context.Context) (string, error)) AccessOption {
	return func(a *Access) { a.ingressURL = f }
}

// WithAddressTimeout bounds the wait for a LoadBalancer address (default
// DefaultAddressTimeout).
func WithAddressTimeout(d time.Duration) AccessOption { return func(a *Access) { a.timeout = d } }

// WithAccessLogger logs port-forwards and waits to l.
func WithAccessLogger(l *slog.Logger) AccessOption { return func(a *Access) { a.log = l } }

// NewAccess returns the Access of cluster name reached through cfg and kube.
func NewAccess(name string, cfg *rest.Config, kube kubernetes.Interface, opts ...AccessOption) *Access {
	a := &Access{name: name, cfg: cfg, kube: kube, timeout: DefaultAddressTimeout,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Ingress returns http://ADDRESS:PORT of Istio's ingress gateway: its
// LoadBalancer address and the Service port that reaches the gateway's HTTP
// listener (8080 in the pod, 80 on the Service in Istio's default profile).
// It waits up to the address timeout for an address to be assigned.
func (a *Access) Ingress(ctx context.Context) (string, error) {
	if a.ingressURL != nil {
		return a.ingressURL(ctx)
	}
	svc, host, err := a.waitAddress(ctx, IngressGatewayService)
	if err != nil {
		return "", err
	}
	port, err := servicePort(svc, ingressTargetPort, "http2", "http")
	if err != nil {
		return "", fmt.Errorf("cluster %s: service %s/%s: %w", a.name, IstioNamespace, IngressGatewayService, err)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// EastWest returns the address other clusters reach this cluster's services
// at: the LoadBalancer address of Istio's east-west gateway and its
// cross-network mTLS port (15443), as translate.Endpoint for the aggregate
// strategy's remote ServiceEntries.
func (a *Access) EastWest(ctx context.Context) (translate.Endpoint, error) {
	svc, host, err := a.waitAddress(ctx, EastWestGatewayName)
	if err != nil {
		return translate.Endpoint{}, err
	}
	port, err := servicePort(svc, translate.DefaultGatewayPort, "tls")
	if err != nil {
		return translate.Endpoint{}, fmt.Errorf("cluster %s: service %s/%s: %w", a.name, IstioNamespace, EastWestGatewayName, err)
	}
	return translate.Endpoint{Address: host, Port: port}, nil
}

// EnvoyAdmin port-forwards a free local port to the pod's Envoy admin port
// (15000). Close the returned Admin to stop the forward.
func (a *Access) EnvoyAdmin(ctx context.Context, namespace, pod string) (*cluster.Admin, error) {
	return a.PodPort(ctx, namespace, pod, EnvoyAdminPort)
}

// PodPort port-forwards to port of the pod (cluster.PodForwarder).
func (a *Access) PodPort(ctx context.Context, namespace, pod string, port int) (*cluster.Admin, error) {
	f, err := PortForward(ctx, a.name, a.cfg, a.kube, namespace, pod, port, a.log)
	if err != nil {
		return nil, err
	}
	// A transport of its own, so its kept-alive connections (each one a stream
	// of the forward) are closed with it.
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	return &cluster.Admin{
		URL:    "http://127.0.0.1:" + strconv.Itoa(f.LocalPort),
		Client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		Close: func() {
			tr.CloseIdleConnections()
			f.Close()
		},
	}, nil
}

// waitAddress waits until the LoadBalancer Service name in istio-system has an
// address and returns the Service and the address (an IP, else a hostname).
func (a *Access) waitAddress(ctx context.Context, name string) (*corev1.Service, string, error) {
	var svc *corev1.Service
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, time.Second, a.timeout, true, func(ctx context.Context) (bool, error) {
		svc, lastErr = a.kube.CoreV1().Services(IstioNamespace).Get(ctx, name, metav1.GetOptions{})
		if lastErr != nil {
			return false, nil
		}
		return LoadBalancerAddress(svc) != "", nil
	})
	if err == nil {
		return svc, LoadBalancerAddress(svc), nil
	}
	switch {
	case lastErr != nil:
		return nil, "", fmt.Errorf("cluster %s: service %s/%s: %w", a.name, IstioNamespace, name, lastErr)
	case svc != nil && svc.Spec.Type != corev1.ServiceTypeLoadBalancer:
		return nil, "", fmt.Errorf("cluster %s: service %s/%s is of type %s, not LoadBalancer, so it has no external address; give drill the gateway's URL instead",
			a.name, IstioNamespace, name, svc.Spec.Type)
	default:
		return nil, "", fmt.Errorf("cluster %s: service %s/%s got no LoadBalancer address within %s: the cluster has no load-balancer implementation answering (on kind: MetalLB; check `kubectl -n metallb-system get pods`), or its pool is exhausted",
			a.name, IstioNamespace, name, a.timeout)
	}
}

// LoadBalancerAddress is the first IP, else hostname, in a Service's
// LoadBalancer status; "" when none is assigned.
func LoadBalancerAddress(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}

// servicePort finds the Service port that targets targetPort, else the first
// port with one of names.
func servicePort(svc *corev1.Service, targetPort int, names ...string) (int, error) {
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.IntValue() == targetPort {
			return int(p.Port), nil
		}
	}
	for _, n := range names {
		for _, p := range svc.Spec.Ports {
			if p.Name == n {
				return int(p.Port), nil
			}
		}
	}
	return 0, fmt.Errorf("no port targets %d or is named %v", targetPort, names)
}
