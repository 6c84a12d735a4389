package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

func newTranslateCmd() *cobra.Command {
	var (
		outDir  string
		output  string
		remotes []string
		rootNS  string
		step    string
	)
	cmd := &cobra.Command{
		Use:   "translate FILE",
		Short: "Print the Istio objects a scenario's mesh policy becomes, per cluster",
		Long: `translate turns the scenario's mesh policy (trafficPolicies and failoverServices)
into the Istio objects each cluster needs, as drill run would apply them, without
touching any cluster. Each cluster gets one multi-document YAML, ready for
kubectl apply: with --out-dir DIR it is written to DIR/<cluster>.yaml; without, every
cluster is printed to stdout after a "# cluster: NAME" line. With -o json the
clusters are printed as one JSON document instead: {"clusters": [{"name", "objects"}]}.
A FILE of - reads the scenario from standard input.

With strategy aggregate, the clients of one cluster reach a backing service in
another cluster through that cluster's east-west gateway. Give its address with
--remote CLUSTER=ADDRESS[:PORT] (port 15443 when left out). For a cluster
without one, the objects resolve <service>.<namespace>.svc.<cluster>.global by DNS
instead, and translate warns: such a placeholder works only if your DNS answers
those names with the gateway's address.

Problems are reported as FILE:LINE:COLUMN: FIELD: message, warnings on stderr.
Exit code 2 when the scenario or the policy is invalid.`,
		Example: `  drill translate scenarios/reviews-failover.yaml
  drill translate scenarios/reviews-failover.yaml --out-dir out/ --remote cluster2=172.18.0.12:15443
  kubectl --context kind-cluster1 apply -f out/cluster1.yaml
  drill translate scenarios/reviews-failover.yaml -o json | jq '.clusters[0].objects[].kind'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			stderr := cmd.ErrOrStderr()
			if err := checkOutput(cmd, output, outputJSON, outputYAML); err != nil {
				return err
			}
			if output == outputJSON && outDir != "" {
				return &exitCodeError{code: exitError, err: errors.New("--out-dir writes YAML files; -o json prints to stdout: use one of them")}
			}
			s, _, err := readScenario(cmd, file)
			if file == "-" {
				file = stdinName
			}
			if err != nil {
				return located(stderr, err, fmt.Errorf("%s is not a valid scenario", file))
			}
			in := translate.Input{Scenario: s, Remotes: map[string]translate.Endpoint{}}
			for _, r := range remotes {
				cluster, ep, err := translate.ParseRemote(r)
				if err != nil {
					return &exitCodeError{code: exitError, err: fmt.Errorf("--remote %w", err)}
				}
				if _, dup := in.Remotes[cluster]; dup {
					return &exitCodeError{code: exitError, err: fmt.Errorf("--remote: cluster %s is given twice", cluster)}
				}
				in.Remotes[cluster] = ep
			}
			opts := []translate.Option{translate.WithRootNamespace(rootNS)}
			if step != "" {
				opts = append(opts, translate.WithStep(step))
			}
			res, err := translate.Translate(in, opts...)
			if err != nil {
				return located(stderr, err, fmt.Errorf("the mesh policy of %s cannot be translated", file))
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(stderr, "warning:", w)
			}
			if output == outputJSON {
				return writeClustersJSON(cmd.OutOrStdout(), res)
			}
			if outDir == "" {
				return writeClusters(cmd.OutOrStdout(), res)
			}
			return writeClusterFiles(stderr, outDir, res)
		},
	}
	f := cmd.Flags()
	addOutDirFlag(f, &outDir, "", "write one file per cluster, DIR/<cluster>.yaml, instead of printing to stdout", "output-dir")
	addOutputFlag(f, &output, outputYAML, outputYAML, outputJSON)
	f.StringArrayVar(&remotes, "remote", nil, "address of a cluster's east-west gateway, CLUSTER=ADDRESS[:PORT]; repeat per cluster")
	f.StringVar(&rootNS, "root-namespace", translate.DefaultRootNamespace, "Istio's root configuration namespace, where the EnvoyFilters go")
	f.StringVar(&step, "step", "", "translate the mesh policy that this step applies instead of spec.mesh")
	return cmd
}

// located turns an error into exit code 2. A scenario.ErrorList is printed one
// problem a line, FILE:LINE:COLUMN: FIELD: message, and summed up by summary; any
// other error is the message itself.
func located(w io.Writer, err, summary error) error {
	var list scenario.ErrorList
	if !errors.As(err, &list) {
		return &exitCodeError{code: exitError, err: err}
	}
	for _, e := range list {
		fmt.Fprintln(w, e)
	}
	return &exitCodeError{code: exitError, err: summary}
}

// renderCluster is one cluster's YAML, under a comment naming the cluster.
func renderCluster(c *translate.ClusterObjects) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# cluster: %s\n", c.Cluster)
	if c.Len() == 0 {
		b.WriteString("# (the mesh policy needs no object in this cluster)\n")
		return b.Bytes(), nil
	}
	if err := translate.WriteYAML(&b, c.Objects()); err != nil {
		return nil, &exitCodeError{code: exitError, err: err}
	}
	return b.Bytes(), nil
}

func writeClusters(w io.Writer, res *translate.Result) error {
	for _, c := range res.Clusters {
		b, err := renderCluster(c)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// clustersJSON is translate -o json.
type clustersJSON struct {
	Clusters []clusterJSON `json:"clusters"`
}

type clusterJSON struct {
	Name    string           `json:"name"`
	Objects []map[string]any `json:"objects"`
}

func writeClustersJSON(w io.Writer, res *translate.Result) error {
	out := clustersJSON{Clusters: []clusterJSON{}}
	for _, c := range res.Clusters {
		cj := clusterJSON{Name: c.Cluster, Objects: []map[string]any{}}
		for _, obj := range c.Objects() {
			m, err := translate.Map(obj)
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			cj.Objects = append(cj.Objects, m)
		}
		out.Clusters = append(out.Clusters, cj)
	}
	return printData(w, outputJSON, out)
}

func writeClusterFiles(log io.Writer, dir string, res *translate.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &exitCodeError{code: exitError, err: fmt.Errorf("create output directory: %w", err)}
	}
	for _, c := range res.Clusters {
		b, err := renderCluster(c)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, c.Cluster+".yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return &exitCodeError{code: exitError, err: fmt.Errorf("write %s: %w", path, err)}
		}
		noun := "objects"
		if c.Len() == 1 {
			noun = "object"
		}
		fmt.Fprintf(log, "%s: %d %s\n", path, c.Len(), noun)
	}
	return nil
}
