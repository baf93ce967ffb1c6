package cli

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// DefaultKubeconfig is where `skiff server` writes the admin kubeconfig.
const DefaultKubeconfig = "/etc/skiff/skiff.yaml"

func newKubectlCommand(streams Streams) *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run kubectl against this cluster (uses " + DefaultKubeconfig + " when KUBECONFIG is unset)",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runKubectl(streams, args)
		},
	}
}

// runKubectl runs upstream kubectl with args. With neither KUBECONFIG nor
// --kubeconfig given, it uses the admin kubeconfig if it exists.
func runKubectl(streams Streams, args []string) error {
	if os.Getenv("KUBECONFIG") == "" && !hasKubeconfigFlag(args) {
		if _, err := os.Stat(DefaultKubeconfig); err == nil {
			// The process is kubectl from here on; KUBECONFIG is how kubectl
			// is told, so that `kubectl config` commands see the same file.
			os.Setenv("KUBECONFIG", DefaultKubeconfig)
		}
	}
	// client-go names the user agent, and so the default field manager,
	// after argv[0]: the process is kubectl from here on.
	os.Args[0] = "kubectl"
	cmd := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   nil,
		IOStreams:     genericiooptions.IOStreams{In: streams.In, Out: streams.Out, ErrOut: streams.ErrOut},
	})
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		// kubectl prints its own errors and exits, as upstream's main does.
		cmdutil.CheckErr(err)
	}
	return nil
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || len(a) > 13 && a[:13] == "--kubeconfig=" {
			return true
		}
		if a == "--" {
			break
		}
	}
	return false
}
