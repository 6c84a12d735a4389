package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v0.1.0".
var version = ""

// drillVersion is the version set at link time, else the module version Go
// recorded (a tag or pseudo-version with go install, and with go build in a
// git checkout), else the commit Go recorded from the checkout ("devel+abc1234",
// "-dirty" when it had changes), else "devel".
func drillVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel+" + rev[:min(len(rev), 12)]
	if dirty {
		v += "-dirty"
	}
	return v
}

// versionInfo is drill version -o json|yaml.
type versionInfo struct {
	DrillVersion string `json:"drillVersion"`
	GoVersion    string `json:"goVersion"`
	Platform     string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print drill's version",
		Example: `  drill version
  drill version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output, outputJSON, outputYAML); err != nil {
				return err
			}
			if output != "" {
				return printData(cmd.OutOrStdout(), output, versionInfo{
					DrillVersion: drillVersion(),
					GoVersion:    runtime.Version(),
					Platform:     runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "drill %s\n", drillVersion())
			return err
		},
	}
	addOutputFlag(cmd.Flags(), &output, "", outputJSON, outputYAML)
	return cmd
}
