package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/version"
)

func newVersionCommand(streams Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Skiff version and the Kubernetes version it implements",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := version.Info()
			fmt.Fprintf(streams.Out, "skiff %s (Kubernetes %s, %s)\n", version.Skiff(), info.GitVersion, info.GoVersion)
			return nil
		},
	}
}
