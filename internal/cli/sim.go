package cli

import (
	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/kubelet"
)

type simNodesFlags struct {
	join                         joinFlags
	count                        int
	prefix                       string
	cpu, memory, pods, ephemeral string
	node                         nodeFlags
}

func newSimCommand(streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulations for scale tests",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSimNodesCommand(streams))
	return cmd
}

func newSimNodesCommand(streams Streams) *cobra.Command {
	f := &simNodesFlags{}
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "Run many simulated nodes in one process, joined to a server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, labels, taints, err := f.node.parse(streams)
			if err != nil {
				return err
			}
			capacity, err := kubelet.ParseCapacity(f.cpu, f.memory, f.pods, f.ephemeral)
			if err != nil {
				return err
			}
			s, err := agent.NewSim(agent.SimConfig{
				Join: f.join.config(), Count: f.count, NamePrefix: f.prefix,
				Capacity: capacity, Labels: labels, Taints: taints, Logger: logger,
			})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	f.join.add(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.count, "count", 1, "how many nodes")
	fl.StringVar(&f.prefix, "name-prefix", "sim-", "node names are this prefix and an index")
	fl.StringVar(&f.cpu, "cpu", "8", "CPU capacity of each node")
	fl.StringVar(&f.memory, "memory", "32Gi", "memory capacity of each node")
	fl.StringVar(&f.pods, "pods", "110", "pod capacity of each node")
	fl.StringVar(&f.ephemeral, "ephemeral-storage", "100Gi", "ephemeral-storage capacity of each node")
	f.node.add(cmd, "every node")
	return cmd
}
