package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/agent"
)

type agentFlags struct {
	join     joinFlags
	runtime  string
	nodeName string
	nodeIP   string
	labels   string
	taints   string
	logLevel string
}

// joinFlags are the flags every command that joins a server shares.
type joinFlags struct {
	server, token, caFile string
}

func (j *joinFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&j.server, "server", "", "URL of the API server, https://HOST:6443")
	fl.StringVar(&j.token, "token", "", "join token, as in the server's DATA_DIR/server/token")
	fl.StringVar(&j.caFile, "ca-file", "", "CA of the server, for a token without the CA hash")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("token")
}

func (j *joinFlags) config() agent.JoinConfig {
	return agent.JoinConfig{Server: j.server, Token: j.token, CAFile: j.caFile}
}

func newLogger(streams Streams, levelText string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelText)); err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: level})), nil
}

func newAgentCommand(streams Streams) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node that joins a server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(streams, f.logLevel)
			if err != nil {
				return err
			}
			labels, err := agent.ParseLabels(f.labels)
			if err != nil {
				return err
			}
			taints, err := agent.ParseTaints(f.taints)
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{
				Join: f.join.config(), Runtime: f.runtime, NodeName: f.nodeName, NodeIP: f.nodeIP,
				Labels: labels, Taints: taints, Logger: logger,
			})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f.join.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.runtime, "runtime", "", "container runtime; only \"simulated\" is implemented yet")
	fl.StringVar(&f.nodeName, "node-name", "", "name of the Node (default: the host name)")
	fl.StringVar(&f.nodeIP, "node-ip", "", "the node's InternalIP (default: first non-loopback IPv4)")
	fl.StringVar(&f.labels, "node-labels", "", "labels to add to the Node, k=v,k2=v2")
	fl.StringVar(&f.taints, "register-with-taints", "", "taints the Node registers with, k=v:Effect,k2:Effect")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("runtime")
	return cmd
}
