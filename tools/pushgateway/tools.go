//go:build tools

// Package tools pins the Prometheus Pushgateway that drill's tests push a
// run's metrics.prom to (drill run --pushgateway). hack/build-tools.sh builds
// it into bin/pushgateway; the test in cmd/drill builds it from this module
// itself when bin/pushgateway is missing.
package tools

import _ "github.com/prometheus/pushgateway"
