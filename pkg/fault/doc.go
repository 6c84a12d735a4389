// Package fault injects the faults of a drill into Kubernetes clusters through
// client-go, and guarantees that each one is undone when the drill ends.
//
// A Fault acts on one cluster (a Target): Scale sets the replicas of a
// workload's Deployments through the scale subresource and remembers each
// Deployment's original count; DeletePods deletes all, a count or a
// percentage of a workload's pods and lets their controllers recreate them.
// Later kinds plug in behind the same interface.
//
// A Set is the record of a run's faults. Set.Apply checks the Target against
// the Set's Guard — destructive faults run only against clusters drill created
// itself or whose kube context the user allowed (--allow-context,
// DRILL_ALLOW_CONTEXTS) — and refuses before anything changes; it then applies
// the fault and publishes event.FaultApplied. Set.Revert undoes one step's
// fault (the scenario's revert steps); Set.RevertAll undoes every fault still
// in place, newest first, except those the scenario keeps. RevertAll is meant
// to be deferred by the engine so that it runs on every way out of a drill:
// success, failure, panic and Ctrl-C. It works on a fresh context with its own
// deadline, so a cancelled run still reverts, and every revert that fails is
// published as event.FaultRevertFailed, logged at error level and returned as
// a *RevertError carrying the exact kubectl command that restores it by hand.
//
// OnInterrupt turns SIGINT/SIGTERM into a cancelled run context followed by
// RevertAll; a second signal exits at once after printing what is left to
// restore.
//
// The engine wires it like this:
//
//	set := fault.NewSet(bus, fault.NewGuard(allowed...))
//	ctx, intr := fault.OnInterrupt(ctx, set)
//	defer intr.Stop()
//	defer func() {
//		if err := set.RevertAll(ctx); err != nil { … report it … }
//	}()
//	…
//	f, err := fault.FromScenario(*step.Fault, ns, target)
//	err = set.Apply(ctx, step.Name, f, fault.Keep(step.Keep))
package fault
