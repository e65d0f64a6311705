package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// The build sets these with -ldflags "-X ...cli.buildVersion=v1.2.3 -X
// ...cli.buildCommit=abc123" (see the Makefile's build target); a plain
// go build leaves them empty and the module's build info is used.
var (
	buildVersion string
	buildCommit  string
)

// VersionInfo is what `version` prints.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// currentVersion is this binary's version: what the build set, else what
// the Go toolchain recorded, else "devel".
func currentVersion() VersionInfo {
	v := VersionInfo{Version: buildVersion, Commit: buildCommit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func newVersionCmd(deps Deps, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary (-o json|yaml)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := currentVersion()
			if g.output != outTable {
				return printData(deps.Stdout, g.output, v)
			}
			fmt.Fprintf(deps.Stdout, "stepflow %s\ncommit: %s\ngo: %s\nplatform: %s\n", v.Version, v.Commit, v.GoVersion, v.Platform)
			return nil
		},
	}
}
