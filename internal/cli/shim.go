package cli

import (
	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/runc"
)

// newShimCommand is the hidden command the runc runtime re-executes the
// skiff binary as: one shim per container, and the pause process of pods
// that share a PID namespace.
func newShimCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "shim",
		Short:              "Supervise one container (started by the runtime, not by people)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runc.ShimMain(args)
		},
	}
}
