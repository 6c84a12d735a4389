package kind

import (
	"bytes"
	"testing"
)

// The parsers of what Docker and istiod print: whatever they get, they return
// a value or an error, and what they return is consistent.

func FuzzParseNetworkIPAM(f *testing.F) {
	f.Add([]byte(`[{"Subnet":"fc00:f853:ccd:e793::/64","Gateway":"fc00:f853:ccd:e793::1"},{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]`))
	f.Add([]byte(`[{"Subnet":"172.19.0.0/16"}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`Error: No such network: kind`))
	f.Fuzz(func(t *testing.T, data []byte) {
		subnet, gw, err := ParseNetworkIPAM(data)
		if err != nil {
			return
		}
		if !subnet.IsValid() || !subnet.Addr().Is4() || subnet != subnet.Masked() {
			t.Fatalf("subnet %s from %q", subnet, data)
		}
		if gw.IsValid() && !gw.Is4() && !gw.Is6() {
			t.Fatalf("gateway %s", gw)
		}
		// Whatever the subnet, the pool of the first cluster is inside it
		// or refused.
		if first, last, err := MetalLBPool(subnet, gw, 0); err == nil {
			if !subnet.Contains(first) || !subnet.Contains(last) || first.Compare(last) > 0 {
				t.Fatalf("pool %s-%s outside %s", first, last, subnet)
			}
		}
	})
}

func FuzzParseDockerPort(f *testing.F) {
	f.Add([]byte("127.0.0.1:49153\n"))
	f.Add([]byte("[::]:49153\n0.0.0.0:49153\n"))
	f.Add([]byte("Error: No public port '30080/tcp' published\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ap, err := ParseDockerPort(data)
		if err == nil && !ap.IsValid() {
			t.Fatalf("invalid address without error from %q", data)
		}
	})
}

func FuzzParseClusterz(f *testing.F) {
	f.Add([]byte(`[{"id":"cluster1","secretName":"","syncStatus":"synced"},{"id":"cluster2","syncStatus":"syncing"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		status, err := ParseClusterz(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, name := range Unsynced(status, []string{"cluster1", "cluster2"}) {
			if name == "" {
				t.Fatal("empty entry in Unsynced")
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: metallb-system}\n---\n"))
	f.Add([]byte("---\n# comment\n---\napiVersion: v1\nkind: ConfigMap\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeManifest(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetAPIVersion() == "" {
				t.Fatalf("object without kind or apiVersion: %v", o.Object)
			}
		}
	})
}
