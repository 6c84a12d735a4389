package existing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward is a running port-forward from 127.0.0.1:LocalPort to a pod's port,
// through the API server (kubectl port-forward's mechanism). When the
// connection to the pod is lost — the API server or kubelet dropped it — the
// Forward dials again on the same local port, so URLs handed out stay valid,
// until Close.
type Forward struct {
	// LocalPort is the port on 127.0.0.1 that reaches the pod's port.
	LocalPort int

	cluster, namespace, pod string
	remote                  int
	dial                    func() (*portforward.PortForwarder, chan struct{}, chan error, error)
	log                     *slog.Logger

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// reconnectDelays are the pauses between attempts to re-establish a lost
// forward: quick at first (a dropped stream is usually transient), then every
// few seconds for a pod that is gone.
var reconnectDelays = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second}

// PortForward forwards a free port on 127.0.0.1 to port of a pod in namespace,
// as `kubectl port-forward` does: an SPDY stream through the API server to the
// kubelet. It returns once the local port listens; ctx bounds only that. The
// Forward runs until Close. cluster names the cluster in messages.
func PortForward(ctx context.Context, cluster string, cfg *rest.Config, kube kubernetes.Interface, namespace, pod string, port int, log *slog.Logger) (*Forward, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s: %w", cluster, namespace, pod, err)
	}
	if p.Status.Phase != corev1.PodRunning {
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s: the pod is %s, not Running; `kubectl describe pod -n %s %s` says why",
			cluster, namespace, pod, p.Status.Phase, namespace, pod)
	}
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: port-forward: %w", cluster, err)
	}
	url := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	client := &http.Client{Transport: transport}

	f := &Forward{
		cluster: cluster, namespace: namespace, pod: pod, remote: port, log: log,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// errOut carries client-go's per-connection complaints ("an error occurred
	// forwarding ..."): worth a line in the log, not an error of the drill.
	errOut := &logWriter{log: log, msg: "port-forward", attrs: []any{"cluster", cluster, "pod", namespace + "/" + pod, "port", port}}
	f.dial = func() (*portforward.PortForwarder, chan struct{}, chan error, error) {
		dialer := spdy.NewDialer(upgrader, client, http.MethodPost, url)
		ready := make(chan struct{})
		pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"},
			[]string{strconv.Itoa(f.LocalPort) + ":" + strconv.Itoa(port)}, f.stop, ready, io.Discard, errOut)
		if err != nil {
			return nil, nil, nil, err
		}
		errc := make(chan error, 1)
		go func() { errc <- pf.ForwardPorts() }()
		return pf, ready, errc, nil
	}

	pf, ready, errc, err := f.dial()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s: %w", cluster, namespace, pod, err)
	}
	select {
	case <-ready:
	case err := <-errc:
		f.stopOnce.Do(func() { close(f.stop) })
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s port %d: %w", cluster, namespace, pod, port, err)
	case <-ctx.Done():
		f.stopOnce.Do(func() { close(f.stop) })
		<-errc
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s port %d: %w", cluster, namespace, pod, port, ctx.Err())
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		f.stopOnce.Do(func() { close(f.stop) })
		<-errc
		return nil, fmt.Errorf("cluster %s: port-forward to pod %s/%s: no local port: %v", cluster, namespace, pod, err)
	}
	f.LocalPort = int(ports[0].Local)
	log.Debug("port-forward open", "cluster", cluster, "pod", namespace+"/"+pod, "port", port, "local", f.LocalPort)
	go f.supervise(errc)
	return f, nil
}

// supervise waits for the running forward to end and, unless stopped, dials
// again on the same local port. Every ForwardPorts it starts has returned
// when supervise does.
func (f *Forward) supervise(errc chan error) {
	defer close(f.done)
	attempt := 0
	err := <-errc
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if err == nil {
			err = errors.New("ended")
		}
		delay := reconnectDelays[min(attempt, len(reconnectDelays)-1)]
		f.log.Warn("port-forward lost; reconnecting", "cluster", f.cluster, "pod", f.namespace+"/"+f.pod, "port", f.remote,
			"local", f.LocalPort, "error", err, "in", delay)
		select {
		case <-f.stop:
			return
		case <-time.After(delay):
		}
		attempt++
		_, ready, next, derr := f.dial()
		if derr != nil {
			// Only malformed arguments fail here, and they did not the first
			// time: give up rather than spin.
			f.log.Error("port-forward cannot be re-established", "cluster", f.cluster, "pod", f.namespace+"/"+f.pod, "error", derr)
			return
		}
		select {
		case <-ready:
			f.log.Info("port-forward re-established", "cluster", f.cluster, "pod", f.namespace+"/"+f.pod, "local", f.LocalPort)
			attempt = 0
			err = <-next
		case err = <-next:
		}
	}
}

// Close stops the forward and waits until its listener is closed. It is safe
// to call more than once.
func (f *Forward) Close() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}

// logWriter turns the lines client-go writes to a port-forward's error output
// into log records.
type logWriter struct {
	log   *slog.Logger
	msg   string
	attrs []any
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Debug(w.msg, append(w.attrs, "says", string(trimNewline(p)))...)
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
