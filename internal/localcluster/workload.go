package localcluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Program is what a container runs on the emulated node, in place of its
// image: there is no container runtime, so each image drill knows maps to Go
// code run inside drill (the Bookinfo images to package bookinfo/app).
//
// Run serves until ctx is cancelled — the container's SIGTERM — and then
// returns promptly; Container.Killed is its SIGKILL, closed when the pod's
// grace period is over. Returning before ctx is cancelled is the container
// exiting: the node restarts it, as the kubelet does under restartPolicy
// Always, after a back-off. Run calls Container.Ready once it serves: that is
// the container's readiness probe passing.
type Program interface {
	Run(ctx context.Context, c *Container) error
}

// ProgramFunc adapts a function to Program.
type ProgramFunc func(ctx context.Context, c *Container) error

// Run calls f.
func (f ProgramFunc) Run(ctx context.Context, c *Container) error { return f(ctx, c) }

// ProgramResolver returns the program that runs image, and false when it does
// not know the image.
type ProgramResolver func(image string) (Program, bool)

// Container is one container of a pod, as its program sees it.
type Container struct {
	// Cluster is the name of the cluster the node belongs to.
	Cluster string
	// Pod is the pod as it was when the container started; read only.
	Pod *corev1.Pod
	// Spec is the container's spec in the pod.
	Spec corev1.Container
	// PodIP is the address the pod reports (10.x); Addr is its loopback twin
	// (127.x), where the pod's sockets live.
	PodIP netip.Addr
	Addr  netip.Addr
	// Env is the container's environment: its literal variables, the
	// downward-API ones the node can resolve (metadata.name,
	// metadata.namespace, status.podIP, …) and HOSTNAME, the pod's name.
	Env map[string]string
	// Outbound carries the container's HTTP calls to other services: through
	// the pod's sidecar when it has one, else the node's kube-proxy-like
	// transport, which resolves Service names to ready endpoints.
	Outbound http.RoundTripper
	// Log is the container's log.
	Log *slog.Logger

	run    *containerRun
	killed <-chan struct{}
}

// Listen opens the container's listener on port. For a port the container
// declares, the node opened the listener when the container started and hands
// it over here: on the pod's address when the pod has no sidecar, else on a
// free port the sidecar forwards inbound traffic to. Any other port is opened
// on the pod's address directly.
func (c *Container) Listen(port int32) (net.Listener, error) {
	return c.run.listen(port)
}

// Ready marks the container ready: the pod turns Ready (and its endpoints
// serve) once all its containers are.
func (c *Container) Ready() { c.run.setReady() }

// Killed is closed when the pod's grace period is over: stop everything now.
func (c *Container) Killed() <-chan struct{} { return c.killed }

// resolveEnv is the container's environment as the kubelet would set it, for
// the values the emulated node can know.
func resolveEnv(pod *corev1.Pod, c corev1.Container, podIP, hostIP netip.Addr) (map[string]string, []string) {
	env := map[string]string{"HOSTNAME": pod.Name}
	var unresolved []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandEnv(e.Value, env)
			continue
		}
		if f := e.ValueFrom.FieldRef; f != nil {
			if v, ok := podField(pod, f.FieldPath, podIP, hostIP); ok {
				env[e.Name] = v
				continue
			}
		}
		unresolved = append(unresolved, e.Name)
	}
	return env, unresolved
}

// expandEnv expands $(VAR) references to variables defined earlier, as the
// kubelet does; unknown references stay as written.
func expandEnv(s string, env map[string]string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		if v, ok := env[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

func podField(pod *corev1.Pod, path string, podIP, hostIP netip.Addr) (string, bool) {
	switch path {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return pod.Namespace, true
	case "metadata.uid":
		return string(pod.UID), true
	case "spec.nodeName":
		return pod.Spec.NodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	case "status.podIP", "status.podIPs":
		return podIP.String(), true
	case "status.hostIP", "status.hostIPs":
		return hostIP.String(), true
	}
	for _, kind := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if key, ok := strings.CutPrefix(path, kind.prefix); ok {
			key = strings.TrimSuffix(key, "']")
			return kind.m[key], true
		}
	}
	return "", false
}

// containerRun is the node's side of one run of a container: its listeners
// and readiness.
type containerRun struct {
	name      string
	addr      netip.Addr
	mu        sync.Mutex
	listeners map[int32]net.Listener // opened by the node, not yet handed over
	opened    []net.Listener         // everything this run opened, closed when it ends
	ready     bool
	onReady   func()
}

// openDeclared opens a listener for each declared port at the address binds
// gives it (port 0: any free port), before the program runs, and returns
// where each ended up.
func (r *containerRun) openDeclared(spec corev1.Container, binds map[int32]netip.AddrPort) (map[int32]netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = map[int32]net.Listener{}
	out := map[int32]netip.AddrPort{}
	for _, p := range spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		bind, ok := binds[p.ContainerPort]
		if !ok {
			bind = netip.AddrPortFrom(r.addr, uint16(p.ContainerPort))
		}
		l, err := net.Listen("tcp", bind.String())
		if err != nil {
			r.closeLocked()
			return nil, fmt.Errorf("container %s: listen on port %d (%s): %w", r.name, p.ContainerPort, bind, err)
		}
		r.listeners[p.ContainerPort] = l
		r.opened = append(r.opened, l)
		out[p.ContainerPort] = l.Addr().(*net.TCPAddr).AddrPort()
	}
	return out, nil
}

func (r *containerRun) listen(port int32) (net.Listener, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.listeners[port]; ok {
		delete(r.listeners, port)
		return l, nil
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(r.addr, uint16(port)).String())
	if err != nil {
		return nil, fmt.Errorf("container %s: listen on port %d: %w", r.name, port, err)
	}
	r.opened = append(r.opened, l)
	return l, nil
}

func (r *containerRun) setReady() {
	r.mu.Lock()
	was := r.ready
	r.ready = true
	cb := r.onReady
	r.mu.Unlock()
	if !was && cb != nil {
		cb()
	}
}

// close closes every listener the run opened: the container's sockets go
// away with it, as they do when a process dies.
func (r *containerRun) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *containerRun) closeLocked() {
	for _, l := range r.opened {
		_ = l.Close()
	}
	r.opened = nil
	r.listeners = nil
}
