package kind

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/pkg/cluster"
)

// TestRegistrationFlags: what a user writes on the command line reaches the
// provider's options.
func TestRegistrationFlags(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	build := Registration().AddFlags(fs)
	err := fs.Parse([]string{
		"--reuse", "--kind-ingress", "hostport",
		"--kind-node-image", "drill.local/kind-node:v1.37.2",
		"--istio-hub", "mirror.example/istio/",
		"--bookinfo-tag", "1.20.2",
		"--kind-create-timeout", "7m", "--kind-ready-timeout", "9m",
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := build(cluster.Common{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*Provider)
	if !p.reuse || !p.keep || p.ingressMode != IngressHostPort || p.nodeImage != "drill.local/kind-node:v1.37.2" ||
		p.istioHub != "mirror.example/istio" || p.bookinfoImages != [2]string{"registry.istio.io/release", "1.20.2"} ||
		p.createTimeout != 7*time.Minute || p.readyTimeout != 9*time.Minute || p.bookinfoTimeout != 9*time.Minute {
		t.Fatalf("provider from flags: %+v", p)
	}

	fs = pflag.NewFlagSet("run", pflag.ContinueOnError)
	build = Registration().AddFlags(fs)
	if err := fs.Parse([]string{"--kind-ingress", "nodeport"}); err != nil {
		t.Fatal(err)
	}
	if _, err := build(cluster.Common{}); err == nil || !strings.Contains(err.Error(), "--kind-ingress \"nodeport\"") {
		t.Fatalf("a bad --kind-ingress: %v, want an error naming the flag and value", err)
	}
}
