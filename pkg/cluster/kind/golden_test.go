package kind

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/pkg/scenario"
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, filepath.Join("testdata", name), got)
}

// scenarios are the drills under scenarios/, as SREs write them.
func scenarios(t *testing.T) []*scenario.Scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "scenarios", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	var out []*scenario.Scenario
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestConfigGolden: the kind configuration of every cluster of every
// scenario, as `kind create cluster --config` would read it.
func TestConfigGolden(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.Metadata.Name, func(t *testing.T) {
			var out bytes.Buffer
			for i, c := range s.Spec.Clusters {
				cfg, err := Config(c, i, HostSettings{})
				if err != nil {
					t.Fatal(err)
				}
				y, err := ConfigYAML(cfg)
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString("# " + DefaultNamePrefix + c.Name + "\n")
				out.Write(y)
				out.WriteString("---\n")
				// What kind reads back is what drill wrote.
				var back v1alpha4.Cluster
				if err := yaml.UnmarshalStrict(y, &back); err != nil {
					t.Fatalf("kind config does not read back strictly: %v", err)
				}
			}
			golden(t, s.Metadata.Name+".kind.golden.yaml", out.Bytes())
		})
	}
}

// TestIstioOperatorGolden: the IstioOperator of every cluster of the seed.
func TestIstioOperatorGolden(t *testing.T) {
	for _, s := range scenarios(t) {
		if s.Metadata.Name != "reviews-failover" {
			continue
		}
		var out bytes.Buffer
		for _, c := range s.Spec.Clusters {
			y, err := IstioOperator(c, IstioHub, IstioVersion)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(y)
			out.WriteString("---\n")
		}
		gw, err := bookinfo.ToUnstructured(CrossNetworkGateway())
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(gw.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(y)
		golden(t, "reviews-failover.istio.golden.yaml", out.Bytes())
		for _, want := range []string{"clusterName: cluster1", "network: network-cluster1", "clusterName: cluster2",
			"ISTIO_META_REQUESTED_NETWORK_VIEW", "nodePort: 30080", "tag: " + IstioVersion, "mode: AUTO_PASSTHROUGH"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the operators lack %q", want)
			}
		}
	}
}

// TestRemoteSecretGolden: the secret istiod's secret controller reads, and
// the kubeconfig in it points at the control plane's address with the reader
// token.
func TestRemoteSecretGolden(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIBdrillTESTca\n-----END CERTIFICATE-----\n")
	s, err := RemoteSecret("cluster2", "https://172.18.0.3:6443", ca, []byte("reader-token"))
	if err != nil {
		t.Fatal(err)
	}
	// The golden file shows the kubeconfig as text (stringData), for review.
	shown := s.DeepCopy()
	shown.StringData = map[string]string{}
	for k, v := range shown.Data {
		shown.StringData[k] = string(v)
	}
	shown.Data = nil
	y, err := yaml.Marshal(shown)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "remote-secret.golden.yaml", y)

	if s.Name != "istio-remote-secret-cluster2" || s.Namespace != "istio-system" ||
		s.Labels["istio/multiCluster"] != "true" || s.Annotations["networking.istio.io/cluster"] != "cluster2" {
		t.Errorf("secret metadata %+v", s.ObjectMeta)
	}
	cfg, err := clientcmd.Load(s.Data["cluster2"])
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://172.18.0.3:6443" || rc.BearerToken != "reader-token" || !bytes.Equal(rc.CAData, ca) {
		t.Errorf("remote kubeconfig: host %s token %q CA %q", rc.Host, rc.BearerToken, rc.CAData)
	}
	// Istio refuses file references in a remote kubeconfig (istio.io/istio
	// pkg/kube/util.go, sanitizeKubeConfig): everything must be inline.
	for _, a := range cfg.AuthInfos {
		if a.TokenFile != "" || a.ClientCertificate != "" || a.ClientKey != "" || a.Exec != nil || a.AuthProvider != nil {
			t.Errorf("remote kubeconfig user has file or plugin references: %+v", a)
		}
	}
}

func TestMetalLBPoolGolden(t *testing.T) {
	first, last, err := MetalLBPool(netip.MustParsePrefix("172.18.0.0/16"), netip.MustParseAddr("172.18.0.1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, o := range MetalLBPoolObjects(first, last) {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(y)
		out.WriteString("---\n")
	}
	golden(t, "metallb-pool.golden.yaml", out.Bytes())
}
