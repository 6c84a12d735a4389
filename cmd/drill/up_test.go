package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
)

// syncBuffer is a bytes.Buffer safe for the command's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUp brings up the seed scenario's clusters as a user would with `drill up`:
// Bookinfo Running with its sidecars in each, reviews' endpoints gone within seconds
// of scaling it to zero with the API, and nothing left reachable after Ctrl-C.
func TestUp(t *testing.T) {
	localtest.SkipIfDisabled(t)
	if testing.Short() {
		t.Skip("brings up two clusters")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"up", "../../scenarios/reviews-failover.yaml"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(out.String(), "ready;") {
		select {
		case err := <-done:
			t.Fatalf("drill up ended early: %v\n%s\n%s", err, out.String(), errOut.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("drill up not ready within 4m:\n%s\n%s", out.String(), errOut.String())
		}
	}
	kubeconfigs := map[string]string{}
	for _, m := range regexp.MustCompile(`cluster (\S+): kubeconfig (\S+)`).FindAllStringSubmatch(out.String(), -1) {
		kubeconfigs[m[1]] = m[2]
	}
	if len(kubeconfigs) != 2 {
		t.Fatalf("want a kubeconfig for each of 2 clusters:\n%s", out.String())
	}
	clients := map[string]kubernetes.Interface{}
	var servers []string
	for name, path := range kubeconfigs {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatalf("cluster %s: kubeconfig %s: %v", name, path, err)
		}
		servers = append(servers, cfg.Host)
		cs := kubernetes.NewForConfigOrDie(cfg)
		clients[name] = cs
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		apps := map[string]bool{}
		for _, p := range pods.Items {
			apps[p.Labels["app"]] = true
			if p.Status.Phase != corev1.PodRunning || !condition(&p, corev1.PodReady) || !condition(&p, localcluster.SidecarCondition) {
				t.Errorf("cluster %s: pod %s is %s, ready %v, sidecar %v", name, p.Name, p.Status.Phase, condition(&p, corev1.PodReady), condition(&p, localcluster.SidecarCondition))
			}
		}
		for _, app := range []string{"productpage", "details", "reviews", "ratings"} {
			if !apps[app] {
				t.Errorf("cluster %s: no %s pod", name, app)
			}
		}
	}

	// Scale reviews to zero in cluster1: its endpoints must go within seconds.
	c1 := clients["cluster1"]
	deps, err := c1.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
	if err != nil || len(deps.Items) == 0 {
		t.Fatalf("reviews deployments: %v", err)
	}
	for _, d := range deps.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := c1.AppsV1().Deployments("default").GetScale(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sc.Spec.Replicas = 0
			_, err = c1.AppsV1().Deployments("default").UpdateScale(ctx, d.Name, sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scaled := time.Now()
	for {
		slices, err := c1.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=reviews"})
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready++
				}
			}
		}
		if ready == 0 {
			t.Logf("reviews endpoints gone %s after scaling to zero", time.Since(scaled).Round(time.Millisecond))
			break
		}
		if time.Since(scaled) > 15*time.Second {
			t.Fatalf("reviews still has %d ready endpoints 15s after scaling to zero", ready)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Ctrl-C: everything goes down.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("drill up: %v\n%s", err, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("drill up did not stop within 2m of Ctrl-C")
	}
	if !strings.Contains(out.String(), "clusters down") {
		t.Errorf("no teardown reported:\n%s", out.String())
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, s := range servers {
		if resp, err := client.Get(s + "/readyz"); err == nil {
			resp.Body.Close()
			t.Errorf("API server %s still answers after drill up stopped", s)
		}
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
