// Package load drives HTTP load at a target with vegeta's attack library and turns the
// results into drill events as the attack goes: a load.started event, one load.window
// event per window of load time (default 1 s) and a load.finished event with the totals.
//
// It is the only part of drill that talks to the system under test the way a user would:
// through the ingress gateway, by host, at a paced rate. The engine starts one Attack
// per scenario load block and cancels its context to abort; assertions on client-side
// errors, degraded answers and latency are computed from the windows it publishes.
//
// How it reads results:
//
//   - A window holds the requests *sent* during it, so a window reflects what the mesh
//     did to traffic offered at that time, however long the answers took.
//   - A window is published once it is final: once every request sent before its end
//     has come back. vegeta numbers requests (Result.Seq) in the same critical section
//     that stamps their send time, so send times never decrease with the sequence
//     number; when all results up to sequence n have arrived and n was sent at or after
//     a window's end, no result for that window can still arrive. Windows are therefore
//     exact (never amended), and published at most one request timeout late.
//   - Latency percentiles come from HDR histograms (3 significant digits); counts and the
//     maximum are exact. Memory is bounded by the windows still open, not by the number
//     of requests.
//   - A degraded answer is a 2xx whose body matches a DegradedWhen; only as many body
//     bytes as the matcher is allowed to look at are read (vegeta's MaxBody).
//   - WithResultsFile keeps every result in vegeta's gob encoding, so `vegeta report`
//     and `vegeta plot` work on it.
package load
