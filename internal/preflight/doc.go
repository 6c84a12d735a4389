// Package preflight checks, before a provider creates anything, that the
// machine can run a drill: the Docker CLI is installed and its daemon answers,
// the Docker engine has the CPUs and memory the scenario's clusters need, the
// pinned versions are what drill was built for, and the artifacts to download
// can be had. Every failed check is a Problem that says what is wrong and what
// to do; Run returns all of them at once as an *Error, which the CLI maps to
// exit code 2 ("the drill could not run").
//
// The checks shell out to the docker CLI as the kind library itself does, so
// what preflight sees is what kind will see.
package preflight
