// Package sidecar plugs drill's emulated Envoy (package proxy) into the
// local provider's node agent: Factory is the node's SidecarFactory, so every
// pod Istio would inject gets a sidecar that takes its configuration from
// its cluster's real istiod.
//
// It lives apart from package proxy because it speaks the node's types
// (local.SidecarPod); package proxy itself imports nothing of the local
// provider, so the provider may use it directly.
package sidecar

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/envoyemu"
	"github.com/meshdrill/drill/internal/localcluster"
)

// Factory starts the emulated sidecar of a pod.
type Factory struct {
	xdsAddr     string
	network     string
	meshID      string
	trustDomain string
	log         *slog.Logger
	readyWithin time.Duration
	proxyOpts   []envoyemu.Option
	ca          *CA
}

// Option tunes a Factory.
type Option func(*Factory)

// WithNetwork sets the Istio network the sidecars announce (NETWORK;
// default none: one flat network).
func WithNetwork(n string) Option { return func(f *Factory) { f.network = n } }

// WithMeshID sets MESH_ID (default "drill", the local provider's mesh).
func WithMeshID(id string) Option { return func(f *Factory) { f.meshID = id } }

// WithTrustDomain sets the SPIFFE trust domain (default cluster.local).
func WithTrustDomain(td string) Option { return func(f *Factory) { f.trustDomain = td } }

// WithLogger sends the sidecars' logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(f *Factory) { f.log = l } }

// WithReadyTimeout bounds how long a sidecar may take to get its first
// configuration from istiod (default 60 s) before its start fails and the
// node retries.
func WithReadyTimeout(d time.Duration) Option { return func(f *Factory) { f.readyWithin = d } }

// WithCA gives every sidecar a certificate from istiod's CA: mutual TLS
// between the proxies, as Istio's default. Without it the sidecars speak
// the plaintext emulation.
func WithCA(ca CA) Option { return func(f *Factory) { f.ca = &ca } }

// WithProxyOptions passes options to every sidecar's proxy.New.
func WithProxyOptions(opts ...envoyemu.Option) Option {
	return func(f *Factory) { f.proxyOpts = append(f.proxyOpts, opts...) }
}

// New returns a factory whose sidecars connect to the istiod at xdsAddr
// (local.ControlPlane.IstiodGRPCAddr of the pod's cluster).
func New(xdsAddr string, opts ...Option) *Factory {
	f := &Factory{xdsAddr: xdsAddr, meshID: "drill", trustDomain: "cluster.local", readyWithin: time.Minute,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(f)
	}
	return f
}

var _ localcluster.SidecarFactory = (*Factory)(nil)

// StartSidecar starts the pod's sidecar and returns once it has its first
// configuration from istiod, as Istio's sidecar holds the application until
// the proxy is ready.
func (f *Factory) StartSidecar(ctx context.Context, pod localcluster.SidecarPod) (localcluster.Sidecar, error) {
	id := Identity(pod)
	id.Network, id.MeshID, id.TrustDomain = f.network, f.meshID, f.trustDomain
	opts := append([]envoyemu.Option{envoyemu.WithLogger(f.log), envoyemu.WithPassthrough(pod.Direct)}, f.proxyOpts...)
	for port, target := range pod.AppPorts {
		opts = append(opts, envoyemu.WithInbound(envoyemu.Inbound{Port: int(port), Target: target.String()}))
	}
	if f.ca != nil {
		src, err := f.ca.Source(pod.Pod.Namespace, id.ServiceAccount, f.trustDomain, pod.Pod, f.log)
		if err != nil {
			return nil, err
		}
		opts = append(opts, envoyemu.WithSecrets(src))
	}
	p, err := envoyemu.New(id, f.xdsAddr, opts...)
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, f.readyWithin)
	defer cancel()
	if err := p.WaitReady(rctx); err != nil {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		_ = p.Stop(sctx)
		return nil, fmt.Errorf("sidecar of %s/%s: %w", pod.Pod.Namespace, pod.Pod.Name, err)
	}
	return &sidecar{p: p, out: p.Transport()}, nil
}

type sidecar struct {
	p   *envoyemu.Proxy
	out http.RoundTripper
}

func (s *sidecar) Outbound() http.RoundTripper { return s.out }

func (s *sidecar) Stop(ctx context.Context) error { return s.p.Stop(ctx) }

// Proxy is the running proxy of a sidecar started by a Factory.
func Proxy(sc localcluster.Sidecar) (*envoyemu.Proxy, bool) {
	s, ok := sc.(*sidecar)
	if !ok {
		return nil, false
	}
	return s.p, true
}

// Identity is the proxy identity of a pod, as Istio's injector and agent
// derive it: the pod's name, namespace, address, labels, annotations and
// service account, and its workload — the Deployment that owns its
// ReplicaSet.
func Identity(pod localcluster.SidecarPod) envoyemu.Identity {
	p := pod.Pod
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return envoyemu.Identity{
		Kind:           envoyemu.Sidecar,
		Pod:            p.Name,
		Namespace:      p.Namespace,
		IP:             pod.PodIP,
		Labels:         p.Labels,
		Annotations:    p.Annotations,
		WorkloadName:   WorkloadName(p),
		ServiceAccount: sa,
		Cluster:        pod.Cluster,
		Node:           p.Spec.NodeName,
	}
}

// WorkloadName is the name of the workload a pod belongs to, as Istio's
// injector computes it for WORKLOAD_NAME: a ReplicaSet owner without its
// pod-template-hash suffix (the Deployment), another owner's own name, or
// the pod's name.
func WorkloadName(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := p.Labels["pod-template-hash"]; h != "" {
				if name, ok := strings.CutSuffix(o.Name, "-"+h); ok {
					return name
				}
			}
		}
		return o.Name
	}
	return p.Name
}

// CA is where the local provider's proxies get their certificates: the
// cluster's istiod CA, as pilot-agent gets them for Envoy.
type CA struct {
	// Addr is istiod's secure gRPC address (localcluster.ControlPlane.IstiodCAAddr).
	Addr string
	// RootPEM is the mesh root istiod's serving certificate chains to.
	RootPEM []byte
	// Cluster is the cluster's ID.
	Cluster string
	// Kube is the cluster's API, which issues the service account tokens.
	Kube kubernetes.Interface
}

// istiodServerName is the name istiod's serving certificate carries
// (istiod.<namespace>.svc).
const istiodServerName = "istiod.istio-system.svc"

// Source is the secret source of a workload running as service account sa
// in namespace ns (bound to pod, when it has one): a certificate for
// spiffe://<trustDomain>/ns/<ns>/sa/<sa> from istiod's CA, authenticated
// with a token the API server issues for the service account, with the
// audience istiod checks (istio-ca), as Kubernetes projects into a pod for
// pilot-agent.
func (ca CA) Source(ns, sa, trustDomain string, pod *corev1.Pod, log *slog.Logger) (*envoyemu.CASource, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.RootPEM) {
		return nil, fmt.Errorf("cluster %s: the mesh root is not a PEM certificate", ca.Cluster)
	}
	token := func(ctx context.Context) (string, error) {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{"istio-ca"},
			ExpirationSeconds: ptr(int64(3600)),
		}}
		if pod != nil {
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
		}
		tr, err := ca.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("token for service account %s/%s: %w", ns, sa, err)
		}
		return tr.Status.Token, nil
	}
	return &envoyemu.CASource{
		Addr: ca.Addr, Roots: roots, ServerName: istiodServerName,
		Identity:  "spiffe://" + trustDomain + "/ns/" + ns + "/sa/" + sa,
		ClusterID: ca.Cluster, Token: token, Log: log,
	}, nil
}

// GatewaySource is Source for a gateway of Istio's system namespace
// (istio-ingressgateway, istio-eastwestgateway): it creates the gateway's
// service account, as Istio's gateway charts do, if it is missing.
func (ca CA) GatewaySource(ctx context.Context, name string, log *slog.Logger) (*envoyemu.CASource, error) {
	sa := name + "-service-account"
	_, err := ca.Kube.CoreV1().ServiceAccounts(localcluster.IstioNamespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: localcluster.IstioNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("gateway %s: service account: %w", name, err)
	}
	return ca.Source(localcluster.IstioNamespace, sa, "cluster.local", nil, log)
}

func ptr[T any](v T) *T { return &v }
