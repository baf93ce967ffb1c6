// Package cli holds Skiff's commands. Each subcommand turns its flags into
// a component Config and runs the component; nothing else happens here.
package cli

import (
	"context"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Streams are the standard streams of the process.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// Run runs the command line args (args[0] is the program name). Invoked
// through a link named kubectl, the binary is kubectl.
func Run(ctx context.Context, streams Streams, args []string) error {
	if len(args) > 0 && filepath.Base(args[0]) == "kubectl" {
		return runKubectl(streams, args[1:])
	}
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Skiff: a Kubernetes-compatible cluster in one small binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(newServerCommand(streams), newKubectlCommand(streams), newVersionCommand(streams))
	root.AddCommand(newAgentCommand(streams), newSimCommand(streams))
	root.AddCommand(newImagesCommand(streams))
	if len(args) > 0 {
		args = args[1:]
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
