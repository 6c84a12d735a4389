//go:build tools

// Package tools pins the vegeta command at the version of the library drill's
// load generator is built on (github.com/tsenart/vegeta/v12 in drill's go.mod).
// hack/build-tools.sh builds it into bin/vegeta; tests run it on the results
// file a drill writes, as an SRE runs `vegeta report` and `vegeta plot`.
package tools

import _ "github.com/tsenart/vegeta/v12"
