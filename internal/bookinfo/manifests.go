package bookinfo

import (
	"fmt"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Object is one object of a Set: a typed client-go or istio.io/client-go object.
// Istio objects are pointers because their Specs are protobuf messages, which
// must not be copied.
type Object interface {
	metav1.Object
	runtime.Object
}

// Set is Bookinfo's objects for one cluster, in the order they are applied:
// the namespace first (pods need its injection label when they are created),
// then what Deployments reference (ServiceAccounts), Services, Deployments, and
// the ingress objects last.
type Set struct {
	Namespace       *corev1.Namespace
	ServiceAccounts []*corev1.ServiceAccount
	Services        []*corev1.Service
	Deployments     []*appsv1.Deployment
	// Gateway and VirtualService route the ingress gateway's traffic to
	// productpage; nil unless built WithIngress.
	Gateway        *networkingv1.Gateway
	VirtualService *networkingv1.VirtualService
}

// Objects returns every object of the set in apply order.
func (s *Set) Objects() []Object {
	var out []Object
	if s.Namespace != nil {
		out = append(out, s.Namespace)
	}
	for _, o := range s.ServiceAccounts {
		out = append(out, o)
	}
	for _, o := range s.Services {
		out = append(out, o)
	}
	for _, o := range s.Deployments {
		out = append(out, o)
	}
	if s.Gateway != nil {
		out = append(out, s.Gateway)
	}
	if s.VirtualService != nil {
		out = append(out, s.VirtualService)
	}
	return out
}

// DeploymentNames lists the set's Deployments by name.
func (s *Set) DeploymentNames() []string {
	out := make([]string, len(s.Deployments))
	for i, d := range s.Deployments {
		out[i] = d.Name
	}
	return out
}

// Option tunes Manifests.
type Option func(*manifestConfig)

type manifestConfig struct {
	observed []string
	ingress  bool
	registry string
	tag      string
	cluster  string
}

// WithObserved names the workloads (app labels, e.g. productpage) whose
// sidecars drill scrapes. Their pods get the proxy.istio.io/config annotation
// that makes an Istio sidecar record its outbound cluster stats, which it does
// not by default (see stats.StatsAnnotation).
func WithObserved(workloads ...string) Option {
	return func(c *manifestConfig) { c.observed = append(c.observed, workloads...) }
}

// WithIngress adds upstream's bookinfo-gateway Gateway and bookinfo
// VirtualService, for the cluster whose ingress gateway takes the load.
func WithIngress() Option { return func(c *manifestConfig) { c.ingress = true } }

// WithImages takes the images from another registry or tag (a mirror),
// keeping upstream's image names: <registry>/examples-bookinfo-<svc>-<version>:<tag>.
func WithImages(registry, tag string) Option {
	return func(c *manifestConfig) { c.registry, c.tag = registry, tag }
}

// WithClusterName tells every workload which cluster it runs in (the
// environment variable CLUSTER_NAME), which drill's Go Bookinfo reports in
// its answers (reviews' clustername) as upstream's reviews does when its
// deployment sets it. Upstream's images that do not read it are unaffected.
func WithClusterName(name string) Option { return func(c *manifestConfig) { c.cluster = name } }

// Labels Bookinfo's objects carry, as upstream sets them.
const (
	LabelApp     = "app"
	LabelVersion = "version"
	// InjectionLabel on a namespace asks Istio's webhook to inject sidecars
	// into its new pods.
	InjectionLabel = "istio-injection"
)

// Names of the ingress objects, as upstream's bookinfo-gateway.yaml has them.
const (
	GatewayName        = "bookinfo-gateway"
	VirtualServiceName = "bookinfo"
	// GatewayPort is the port of the Gateway's server: the ingress gateway's
	// container port since Istio's gateways run unprivileged (upstream moved
	// the sample from 80 to 8080).
	GatewayPort = 8080
)

// IngressPaths are the paths upstream's VirtualService routes to productpage:
// exact /productpage, /login, /logout and prefixes /static, /api/v1/products.
var IngressPaths = []struct {
	Path   string
	Prefix bool
}{
	{"/productpage", false},
	{"/static", true},
	{"/login", false},
	{"/logout", false},
	{"/api/v1/products", true},
}

// Manifests builds Bookinfo's objects for a cluster that runs b in namespace.
// Every cluster gets the four ServiceAccounts and Services, whatever runs
// there: a Service must exist in the calling cluster for its name to resolve,
// as in Istio's multicluster setups; Deployments exist only for the versions
// b lists, with b.Replicas each (1 when unset). A cluster with install: false
// gets an empty Set: drill installs nothing there.
func Manifests(b scenario.Bookinfo, namespace string, opts ...Option) (*Set, error) {
	cfg := manifestConfig{registry: Registry, tag: Tag}
	for _, o := range opts {
		o(&cfg)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("bookinfo: namespace %q: %s", namespace, errs[0])
	}
	for _, w := range cfg.observed {
		if _, known := versions[w]; !known {
			return nil, fmt.Errorf("bookinfo: observed workload %q is not a Bookinfo service (%v)", w, Services)
		}
	}
	if b.Install != nil && !*b.Install {
		return &Set{}, nil
	}
	if b.Replicas < 0 {
		return nil, fmt.Errorf("bookinfo: replicas %d: must not be negative", b.Replicas)
	}
	replicas := int32(b.Replicas)
	if replicas == 0 {
		replicas = scenario.DefaultReplicas
	}
	byService := map[string][]string{
		Productpage: b.Productpage, Details: b.Details, Reviews: b.Reviews, Ratings: b.Ratings,
	}

	s := &Set{Namespace: &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{InjectionLabel: "enabled"}},
	}}
	for _, svc := range Services {
		s.Services = append(s.Services, service(svc, namespace))
		s.ServiceAccounts = append(s.ServiceAccounts, serviceAccount(svc, namespace))
		seen := map[string]bool{}
		for _, v := range byService[svc] {
			if !Supported(svc, v) {
				return nil, fmt.Errorf("bookinfo: %s has no version %q drill can run (it runs %v)", svc, v, versions[svc])
			}
			if seen[v] {
				return nil, fmt.Errorf("bookinfo: %s version %q is listed twice", svc, v)
			}
			seen[v] = true
			d := deployment(svc, v, namespace, replicas, imageFrom(cfg.registry, cfg.tag, svc, v))
			if slices.Contains(cfg.observed, svc) {
				key, value := stats.StatsAnnotation()
				d.Spec.Template.Annotations[key] = value
			}
			if cfg.cluster != "" {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Env = append(c.Env, corev1.EnvVar{Name: "CLUSTER_NAME", Value: cfg.cluster})
			}
			s.Deployments = append(s.Deployments, d)
		}
	}
	if cfg.ingress {
		s.Gateway, s.VirtualService = ingress(namespace)
	}
	return s, nil
}

// ServiceAccountName is the ServiceAccount upstream gives a service's pods.
func ServiceAccountName(svc string) string { return "bookinfo-" + svc }

// DeploymentName is the Deployment of a service's version, e.g. reviews-v2.
func DeploymentName(svc, version string) string { return svc + "-" + version }

func serviceAccount(svc, ns string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceAccountName(svc), Namespace: ns,
			Labels: map[string]string{"account": svc},
		},
	}
}

func service(svc, ns string) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: svc, Namespace: ns,
			Labels: map[string]string{LabelApp: svc, "service": svc},
		},
		Spec: corev1.ServiceSpec{
			// Upstream leaves targetPort out, which defaults it to the port;
			// it is written out here so what is applied is what is meant.
			Ports:    []corev1.ServicePort{{Name: "http", Port: Port, TargetPort: intstr.FromInt32(Port), Protocol: corev1.ProtocolTCP}},
			Selector: map[string]string{LabelApp: svc},
		},
	}
}

func deployment(svc, version, ns string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{LabelApp: svc, LabelVersion: version}
	c := corev1.Container{
		Name:            svc,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Ports:           []corev1.ContainerPort{{ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
		// Ready only once the application answers. Without a probe a pod is
		// Ready when its containers start, before the application listens:
		// its endpoint goes healthy in every Envoy, the first requests get
		// 503s from its sidecar, and outlier detection ejects the new pod,
		// so traffic came home a whole ejection late after a scale back up.
		// Every Bookinfo service, upstream's and drill's, serves /health;
		// Istio's injector rewrites the probe to go through pilot-agent.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(Port)}},
			PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3,
		},
	}
	pod := corev1.PodSpec{ServiceAccountName: ServiceAccountName(svc), Containers: []corev1.Container{c}}
	annotations := map[string]string{}
	// Upstream's volumes and environment, kept so that the same Deployment
	// runs the real images unchanged: the reviews image (Open Liberty) writes
	// its logs and work files there.
	switch svc {
	case Reviews:
		pod.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_DIR", Value: "/tmp/logs"}}
		pod.Containers[0].VolumeMounts = []corev1.VolumeMount{
			{Name: "tmp", MountPath: "/tmp"},
			{Name: "wlp-output", MountPath: "/opt/ibm/wlp/output"},
		}
		pod.Volumes = []corev1.Volume{emptyDir("wlp-output"), emptyDir("tmp")}
	case Productpage:
		pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
		pod.Volumes = []corev1.Volume{emptyDir("tmp")}
		annotations["prometheus.io/scrape"] = "true"
		annotations["prometheus.io/port"] = "9080"
		annotations["prometheus.io/path"] = "/metrics"
	}
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: DeploymentName(svc, version), Namespace: ns, Labels: labels,
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyLabels(labels), Annotations: annotations},
				Spec:       pod,
			},
		},
	}
}

func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ingress builds upstream's bookinfo-gateway.yaml.
func ingress(ns string) (*networkingv1.Gateway, *networkingv1.VirtualService) {
	gw := &networkingv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: ns},
	}
	// The selector matches the pods of Istio's default ingress gateway.
	gw.Spec.Selector = map[string]string{"istio": "ingressgateway"}
	gw.Spec.Servers = []*networking.Server{{
		Port:  &networking.Port{Number: GatewayPort, Name: "http", Protocol: "HTTP"},
		Hosts: []string{"*"},
	}}

	vs := &networkingv1.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "VirtualService"},
		ObjectMeta: metav1.ObjectMeta{Name: VirtualServiceName, Namespace: ns},
	}
	vs.Spec.Hosts = []string{"*"}
	vs.Spec.Gateways = []string{GatewayName}
	var match []*networking.HTTPMatchRequest
	for _, p := range IngressPaths {
		m := &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: p.Path}}
		if p.Prefix {
			m = &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: p.Path}}
		}
		match = append(match, &networking.HTTPMatchRequest{Uri: m})
	}
	vs.Spec.Http = []*networking.HTTPRoute{{
		Match: match,
		Route: []*networking.HTTPRouteDestination{{
			Destination: &networking.Destination{Host: Productpage, Port: &networking.PortSelector{Number: Port}},
		}},
	}}
	return gw, vs
}

// YAML renders the set as one multi-document YAML stream in apply order, the
// objects exactly as Apply sends them: `kubectl apply --server-side -f` of it
// does what Apply does.
func (s *Set) YAML() ([]byte, error) {
	var out []byte
	for i, obj := range s.Objects() {
		u, err := ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", describe(obj), err)
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
