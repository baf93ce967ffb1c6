package cli

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/image"
)

type imagesFlags struct {
	dir, registriesFile string
}

func (f *imagesFlags) store(streams Streams) (*image.Store, error) {
	logger := slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return image.New(image.Config{Root: f.dir, RegistriesFile: f.registriesFile, Logger: logger})
}

func newImagesCommand(streams Streams) *cobra.Command {
	f := &imagesFlags{}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Manage the node's container images",
		Args:  cobra.NoArgs,
	}
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.dir, "images-dir", "/var/lib/skiff/images", "image store directory (DATA_DIR/images of the server or agent)")
	fl.StringVar(&f.registriesFile, "registries-file", "/etc/skiff/registries.yaml", "registry mirrors and credentials (k3s format)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "ls",
			Short: "List images",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				s, err := f.store(streams)
				if err != nil {
					return err
				}
				list, err := s.List()
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(streams.Out, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "IMAGE\tTAG\tIMAGE ID\tSIZE")
				for _, img := range list {
					id := strings.TrimPrefix(img.ID, "sha256:")
					if len(id) > 13 {
						id = id[:13]
					}
					tags := img.RepoTags
					if len(tags) == 0 {
						tags = []string{"<none>:<none>"}
					}
					for _, t := range tags {
						i := strings.LastIndex(t, ":")
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t[:i], t[i+1:], id, humanSize(img.Size))
					}
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "pull REF",
			Short: "Pull an image from its registry or mirrors",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				s, err := f.store(streams)
				if err != nil {
					return err
				}
				img, err := s.Pull(cmd.Context(), args[0], nil, func(line string) { fmt.Fprintln(streams.ErrOut, line) })
				if err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "Image is up to date for %s\n", img.ID)
				return nil
			},
		},
		&cobra.Command{
			Use:   "import FILE...",
			Short: "Import images from docker-save or OCI archives",
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				s, err := f.store(streams)
				if err != nil {
					return err
				}
				for _, file := range args {
					imgs, err := s.Import(cmd.Context(), file)
					if err != nil {
						return err
					}
					for _, img := range imgs {
						name := img.ID
						if len(img.RepoTags) > 0 {
							name = strings.Join(img.RepoTags, ", ")
						}
						fmt.Fprintf(streams.Out, "Imported %s (%s)\n", name, img.ID)
					}
				}
				return nil
			},
		},
		&cobra.Command{
			Use:     "rm REF...",
			Aliases: []string{"rmi"},
			Short:   "Untag or remove images (by tag, digest or ID)",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				s, err := f.store(streams)
				if err != nil {
					return err
				}
				for _, ref := range args {
					if err := s.Remove(ref); err != nil {
						return err
					}
					fmt.Fprintf(streams.Out, "Deleted: %s\n", ref)
				}
				return nil
			},
		},
	)
	return cmd
}

// humanSize is a decimal size with up to three significant digits, as
// crictl shows image sizes ("2.15MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	prec := 0
	switch {
	case i == 0:
	case f < 10:
		prec = 2
	case f < 100:
		prec = 1
	}
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	}
	return s + units[i]
}
