package bookinfo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// logTail is how many of a container's last log lines a diagnosis quotes.
const logTail = 3

// Diagnose says why a pod is not ready, for a timeout message: its state as
// `kubectl get pods` sums it up, its latest warning events (a failed pull,
// a failed probe), and the last lines a not-ready container logged — of its
// previous run when it crashed. For Istio's sidecar or gateway (container
// istio-proxy) it quotes pilot-agent's own readiness reason ("Envoy proxy
// is NOT ready: …") when its log has one.
func Diagnose(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	parts := []string{podWhy(p)}
	if evs, err := kube.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + p.Name,
	}); err == nil {
		var warn []corev1.Event
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == p.Name {
				warn = append(warn, e)
			}
		}
		sort.Slice(warn, func(i, j int) bool { return eventTime(warn[i]).After(eventTime(warn[j])) })
		for _, e := range warn[:min(2, len(warn))] {
			parts = append(parts, fmt.Sprintf("event %s: %s", e.Reason, strings.TrimSpace(e.Message)))
		}
	}
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if cs.Ready || (cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0) {
			continue
		}
		if cs.State.Waiting != nil && strings.Contains(cs.State.Waiting.Reason, "Image") {
			continue // never started: nothing logged
		}
		previous := cs.RestartCount > 0 && cs.State.Running == nil
		lines := containerLog(ctx, kube, p, cs.Name, previous)
		if cs.Name == "istio-proxy" {
			if r := lastMatching(lines, "NOT ready"); r != "" {
				parts = append(parts, "pilot-agent: "+r)
				continue
			}
		}
		if len(lines) > 0 {
			lines = lines[max(0, len(lines)-logTail):]
			parts = append(parts, fmt.Sprintf("container %s logged: %s", cs.Name, strings.Join(lines, " | ")))
		}
	}
	return strings.Join(parts, "; ")
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

// containerLog is the end of a container's log, line by line.
func containerLog(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod, container string, previous bool) []string {
	tail := int64(40)
	rc, err := kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{
		Container: container, TailLines: &tail, Previous: previous,
	}).Stream(ctx)
	if err != nil {
		return nil
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(rc, 64<<10))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func lastMatching(lines []string, sub string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
