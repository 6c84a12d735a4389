// Package bookinfo is drill's one source of truth for Istio's Bookinfo sample:
// the Kubernetes and Istio objects every provider applies (Manifests), the
// images they name (Image, ParseImage), and applying them server-side and
// waiting until they serve (Apply).
//
// The objects are those of Istio's samples/bookinfo/platform/kube/bookinfo.yaml
// and samples/bookinfo/networking/bookinfo-gateway.yaml, built as typed
// client-go and istio.io/client-go objects: ServiceAccounts bookinfo-<svc>,
// Services on port 9080 named http, Deployments <svc>-<version> labelled
// app/version, the namespace labelled istio-injection=enabled, and the
// bookinfo-gateway Gateway and bookinfo VirtualService for the cluster that
// takes ingress traffic. The kind provider runs them from the public images;
// the local provider applies the very same objects and its emulated node runs
// the Go workloads of package bookinfo/app for those images.
package bookinfo
