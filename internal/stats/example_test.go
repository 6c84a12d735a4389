package stats_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/event"
)

func ExampleParseClusterName() {
	for _, name := range []string{
		"outbound|9080||reviews.default.svc.cluster.local",
		"outbound|9080||reviews.default.svc.cluster2.global",
		"outbound|9080||reviews-failover.default.global",
	} {
		c, _ := stats.ParseClusterName(name, "cluster1")
		fmt.Printf("%s %s.%s served from %q\n", c.Kind, c.Service, c.Namespace, c.KubeCluster)
	}
	// Output:
	// local reviews.default served from "cluster1"
	// remote reviews.default served from "cluster2"
	// failover reviews-failover.default served from ""
}

// The engine starts one Scraper per observed workload on the run's bus, with the
// admin URL its cluster provider opened, and stops it by cancelling ctx.
func ExampleNewScraper() {
	bus := event.NewBus()
	s, err := stats.NewScraper(stats.Target{
		Workload: "productpage",
		Pod:      "productpage-v1-7d9f8b6c5-x2x4q",
		Cluster:  "cluster1",
		AdminURL: "http://127.0.0.1:15000", // a port-forward of the pod's admin port
	}, bus, stats.WithInterval(time.Second))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// Fail early when the sidecar hides its outbound stats.
	snap, err := s.Scrape(ctx)
	if err == nil {
		err = stats.CheckOutboundStats(snap, "productpage")
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.Run(ctx) // publishes stats.sample events until ctx ends
}
