// Package watch follows what Kubernetes does to the workloads of a drill and
// puts it on the event record: Deployments' replica counts, pods becoming
// ready, terminating and deleted, and the ready and not-ready endpoints of
// services.
//
// A Watcher covers one cluster: client-go informers on the Deployments and
// Pods labelled app=<workload> and on the EndpointSlices of the matching
// services (kubernetes.io/service-name=<service>), in one namespace or all.
// Each change that matters becomes an event — event.ReplicasChanged,
// event.PodReady, event.PodTerminating, event.PodDeleted,
// event.EndpointsChanged — published with the cluster's name and timestamped
// by the event Bus as it arrives. What a Watcher sees first (the objects
// present when it starts) is published too, as the baseline later changes are
// read against; an update that changes nothing a drill looks at (a resync, a
// new resourceVersion, a status field drill ignores) publishes nothing.
//
// The engine starts one Watcher per cluster before the load starts:
//
//	w := watch.New(c.Name, c.Client, bus, watch.WithNamespace(ns), watch.WithWorkloads("reviews", "productpage"))
//	go func() { errc <- w.Run(ctx) }()
//	if err := w.WaitForSync(ctx); err != nil { … }
package watch
