package localcluster_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
)

func benchNode(b *testing.B) kubernetes.Interface {
	b.Helper()
	cp := localtest.Start(b, localcluster.WithoutIstiod())
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	node, err := localcluster.StartNode(b.Context(), "bench", 0, cs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = node.Stop(ctx)
	})
	return cs
}

// BenchmarkNodeScaleCycle measures the chain a scale fault sets off, through
// the real API server and controllers: a Deployment scaled to zero until its
// Service has no ready endpoint and then none at all; scaled back to one
// until the new pod is a ready endpoint. Run with -benchtime=10x.
func BenchmarkNodeScaleCycle(b *testing.B) {
	cs := benchNode(b)
	ctx := b.Context()
	deploy(b, cs, "bench", "reviews", "docker.io/istio/examples-bookinfo-reviews-v1:1.20.3", 9080, 30, true)
	nodeWait(b, 30*time.Second, "a ready endpoint", func() (bool, error) {
		_, ready, err := endpoints(ctx, cs, "bench", "reviews")
		return ready == 1, err
	})
	var notReady, gone, back time.Duration
	b.ResetTimer()
	for range b.N {
		begin := time.Now()
		scale(b, cs, "bench", "reviews", 0)
		seenNotReady := false
		nodeWait(b, 30*time.Second, "no endpoint", func() (bool, error) {
			all, ready, err := endpoints(ctx, cs, "bench", "reviews")
			if err == nil && ready == 0 && !seenNotReady {
				seenNotReady = true
				notReady += time.Since(begin)
			}
			return err == nil && all == 0, err
		})
		gone += time.Since(begin)
		begin = time.Now()
		scale(b, cs, "bench", "reviews", 1)
		nodeWait(b, 30*time.Second, "a ready endpoint again", func() (bool, error) {
			_, ready, err := endpoints(ctx, cs, "bench", "reviews")
			return ready == 1, err
		})
		back += time.Since(begin)
	}
	n := float64(b.N)
	b.ReportMetric(float64(notReady.Milliseconds())/n, "ms-to-not-ready")
	b.ReportMetric(float64(gone.Milliseconds())/n, "ms-to-no-endpoint")
	b.ReportMetric(float64(back.Milliseconds())/n, "ms-to-ready-endpoint")
}

// BenchmarkNodePodStart measures a pod from its creation to Ready, as a
// watch sees it: bind, address, program started, status written.
func BenchmarkNodePodStart(b *testing.B) {
	cs := benchNode(b)
	ctx := b.Context()
	deploy(b, cs, "bench", "warmup", "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3", 9080, 0, true)
	zero := int64(0)
	b.ResetTimer()
	for i := range b.N {
		name := "ratings-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: &zero,
				Containers: []corev1.Container{{Name: "ratings", Image: "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3",
					Ports: []corev1.ContainerPort{{ContainerPort: 9080}}}},
			},
		}
		if _, err := cs.CoreV1().Pods("bench").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		// Polled every 10ms: a watch would be finer but, on a loaded
		// machine, the API server's watch cache may answer a new watch with
		// "too large resource version" while it catches up.
		nodeWait(b, 30*time.Second, "pod "+name+" ready", func() (bool, error) {
			p, err := cs.CoreV1().Pods("bench").Get(ctx, name, metav1.GetOptions{})
			return err == nil && podReady(p), nil
		})
		b.StopTimer()
		if err := cs.CoreV1().Pods("bench").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
