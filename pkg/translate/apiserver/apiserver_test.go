// Package apiserver_test applies what pkg/translate produces to a real
// kube-apiserver. It lives apart from the translate package's own tests so that
// their test binary stays free of client-go's typed clients, which make
// coverage-guided fuzzing of the translator crawl.
package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// TestAPIServerAcceptsTranslation applies every object of every translation to a
// real kube-apiserver with Istio's CRDs installed: server-side dry run through
// client-go (structural schema, CEL rules, strict fields), `kubectl apply
// --dry-run=server` on the rendered files when kubectl is installed, and a real
// apply of the seed that is then found, and removed, by the scenario's selector.
func TestAPIServerAcceptsTranslation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver; not in -short")
	}
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := cp.RESTConfig()
	dyn := dynamic.NewForConfigOrDie(cfg)
	kube := kubernetes.NewForConfigOrDie(cfg)
	installIstioCRDs(t, ctx, dyn)

	// Every namespace the translations put objects in.
	namespaces := map[string]bool{}
	cases := translations(t)
	for _, objs := range cases {
		for _, o := range objs {
			namespaces[o.GetNamespace()] = true
		}
	}
	for ns := range namespaces {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}

	t.Run("server-side dry run", func(t *testing.T) {
		n := 0
		for name, objs := range cases {
			for _, o := range objs {
				u, err := translate.ToUnstructured(o)
				if err != nil {
					t.Fatal(err)
				}
				_, err = dyn.Resource(translate.Resource(o)).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), u,
					metav1.ApplyOptions{FieldManager: "drill", Force: true, DryRun: []string{metav1.DryRunAll}})
				if err != nil {
					t.Errorf("%s: %s rejected: %v", name, describe(o), err)
				}
				n++
			}
		}
		t.Logf("%d objects accepted", n)
	})

	t.Run("the API server rejects what the CRDs forbid", func(t *testing.T) {
		// A check that can fail: the same path refuses an EnvoyFilter patch with an
		// operation Istio does not have.
		var o translate.Object
		for _, c := range cases["seed.yaml remotes=ip cluster1"] {
			if c.GetObjectKind().GroupVersionKind().Kind == "EnvoyFilter" {
				o = c
			}
		}
		if o == nil {
			t.Fatal("the seed has no EnvoyFilter in cluster1")
		}
		u, err := translate.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		patches, _, _ := unstructured.NestedSlice(u.Object, "spec", "configPatches")
		patches[0].(map[string]any)["patch"].(map[string]any)["operation"] = "SWAP"
		if err := unstructured.SetNestedSlice(u.Object, patches, "spec", "configPatches"); err != nil {
			t.Fatal(err)
		}
		_, err = dyn.Resource(translate.Resource(o)).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), u,
			metav1.ApplyOptions{FieldManager: "drill", Force: true, DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "operation") {
			t.Fatalf("an unknown patch operation was accepted (err %v)", err)
		}
		t.Logf("rejected as it should be: %v", err)
	})

	t.Run("kubectl apply --dry-run=server", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed")
		}
		dir := t.TempDir()
		total := 0
		for name, objs := range cases {
			if len(objs) == 0 {
				continue
			}
			var b bytes.Buffer
			if err := translate.WriteYAML(&b, objs); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.NewReplacer(" ", "_", "=", "-").Replace(name)+".yaml")
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			total += len(objs)
		}
		// One kubectl for every file: it reads the directory and names the file and
		// object of any error.
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cp.Kubeconfig(), "apply", "--dry-run=server", "-f", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
		}
		if got := strings.Count(string(out), "(server dry run)"); got != total {
			t.Errorf("kubectl applied %d of %d objects:\n%s", got, total, out)
		}
	})

	t.Run("find and remove what was applied", func(t *testing.T) {
		objs := cases["seed.yaml remotes=ip cluster1"]
		for _, o := range objs {
			u, err := translate.ToUnstructured(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dyn.Resource(translate.Resource(o)).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), u,
				metav1.ApplyOptions{FieldManager: "drill", Force: true}); err != nil {
				t.Fatalf("apply %s: %v", describe(o), err)
			}
		}
		// Applying the same objects again changes nothing: server-side apply of
		// a deterministic translation is idempotent.
		for _, o := range objs {
			u, _ := translate.ToUnstructured(o)
			before, err := dyn.Resource(translate.Resource(o)).Namespace(o.GetNamespace()).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			after, err := dyn.Resource(translate.Resource(o)).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), u,
				metav1.ApplyOptions{FieldManager: "drill", Force: true})
			if err != nil {
				t.Fatal(err)
			}
			if before.GetResourceVersion() != after.GetResourceVersion() {
				t.Errorf("re-applying %s changed it", describe(o))
			}
		}
		sel := translate.Selector("reviews-failover")
		found := 0
		for _, gvr := range []schema.GroupVersionResource{
			{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
			{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
			{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
			{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"},
		} {
			list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range list.Items {
				found++
				if err := dyn.Resource(gvr).Namespace(item.GetNamespace()).Delete(ctx, item.GetName(), metav1.DeleteOptions{}); err != nil {
					t.Errorf("delete %s %s/%s: %v", gvr.Resource, item.GetNamespace(), item.GetName(), err)
				}
			}
		}
		if found != len(objs) {
			t.Errorf("selector %q found %d objects, %d were applied", sel, found, len(objs))
		}
	})
}

// installIstioCRDs applies the CRDs istio.io/api ships and waits until the API
// server serves them.
func installIstioCRDs(t *testing.T, ctx context.Context, dyn dynamic.Interface) {
	t.Helper()
	b, err := os.ReadFile(istioCRDFile(t))
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var names []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := dyn.Resource(crdGVR).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "drill-test", Force: true}); err != nil {
			t.Fatalf("apply CRD %s: %v", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("Istio's CRDs not established within a minute: %v", err)
	}
}

// translations translates every scenario of the translate package's testdata,
// offline, with IP addresses and with DNS names for the remote clusters, and every
// apply step, keyed by "<file> remotes=<variant>[ step=<step>] <cluster>".
func translations(t *testing.T) map[string][]translate.Object {
	t.Helper()
	files, err := filepath.Glob("../testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in ../testdata: %v", err)
	}
	out := map[string][]translate.Object{}
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		variants := map[string]map[string]translate.Endpoint{"none": nil, "ip": {}, "dns": {}}
		for i, c := range s.Spec.Clusters {
			variants["ip"][c.Name] = translate.Endpoint{Address: fmt.Sprintf("192.0.2.%d", i+1)}
			variants["dns"][c.Name] = translate.Endpoint{Address: "eastwest." + c.Name + ".example.com", Port: 443, Network: c.Network}
		}
		steps := []string{""}
		for _, st := range s.Spec.Steps {
			if st.Apply != nil {
				steps = append(steps, st.Name)
			}
		}
		for variant, remotes := range variants {
			for _, step := range steps {
				var opts []translate.Option
				key := filepath.Base(f) + " remotes=" + variant
				if step != "" {
					opts = append(opts, translate.WithStep(step))
					key += " step=" + step
				}
				res, err := translate.Translate(translate.Input{Scenario: s, Remotes: remotes}, opts...)
				if err != nil {
					continue // the error cases
				}
				for _, c := range res.Clusters {
					out[key+" "+c.Cluster] = c.Objects()
				}
			}
		}
	}
	if _, ok := out["seed.yaml remotes=ip cluster1"]; !ok {
		t.Fatal("the seed scenario is not among the translations")
	}
	return out
}

func describe(o translate.Object) string {
	return o.GetObjectKind().GroupVersionKind().Kind + " " + o.GetNamespace() + "/" + o.GetName()
}

// istioCRDFile is Istio's CRD manifest as the istio.io/api module drill builds
// against ships it.
func istioCRDFile(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("find the istio.io/api module (go list -m istio.io/api): %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
}
