// Package drill is the engine: it runs a scenario from start to verdict. It brings
// the clusters up through a cluster.Provider, applies the translated failover policy,
// waits for the mesh to answer, starts the watches, scrapers and failover detectors,
// drives the load while the timeline fires its steps, reverts every fault, and writes
// the reports from the run's event log. It does not know which provider it runs on.
package drill
