// Package report judges a drill and writes its reports.
//
// Everything a run does is an event in its log (events.jsonl, package event), and
// the report is computed from that log alone, so that `drill report DIR` rebuilds
// the same report long after the clusters are gone. Build reads the events: the
// scenario kept in run.started, the steps as they fired, the load windows, the
// Envoy stats samples and the failovers detected, and judges each of the
// scenario's expectations, observed value against limit, into a Report with a
// verdict: pass, fail or error (exit codes 0, 1, 2). WriteAll writes its four
// forms: report.json (the stable, machine-read form), junit.xml (one testcase per
// expectation, for CI test reporters), summary.md (a CI job summary) and
// report.html (one self-contained page with charts of the run).
//
// The package also holds the failover Detector, which reads stats samples and
// tells when traffic for a service moved to another cluster and back. The engine
// runs it live on the Bus, to publish failover.detected events that steps can be
// triggered by; Build runs the same Detector over the log when those events are
// missing, so that both agree.
//
// docs/reports.md describes the files, the report.json schema and how every
// expectation and the failover time are computed.
package report
