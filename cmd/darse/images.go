package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

func newImagesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the platform's container images locally",
		Long: "The platform's images (nginx, php-fpm) are built from Debian packages with\n" +
			"debootstrap and imported into the Docker engine: no registry is needed.",
	}
	cmd.AddCommand(newImagesBuildCmd(a), newImagesLsCmd(a), newImagesUpdateCmd(a), newImagesRolloutCmd(a))
	return cmd
}

func loadImages() ([]images.Definition, error) {
	sub, err := fs.Sub(darse.Images, "images")
	if err != nil {
		return nil, err
	}
	return images.Load(sub)
}

func newImagesBuildCmd(a *app) *cobra.Command {
	var (
		force   bool
		verbose bool
		b       images.Builder
	)
	cmd := &cobra.Command{
		Use:   "build [NAME...]",
		Short: "Build the images missing from the engine (all, or those named)",
		Long: "Build each image whose tag the engine does not have yet, or every one with\n" +
			"--force. Needs root (debootstrap) and network access to the Debian mirror;\n" +
			"downloaded packages are kept in --cache-dir for the next build.",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			defs, err := loadImages()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, d := range defs {
				if strings.HasPrefix(d.Name, toComplete) && !slices.Contains(args, d.Name) {
					out = append(out, d.Name)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, names []string) error {
			return a.eachImage(cmd, names, &b, verbose, func(ctx context.Context, d images.Definition, p *stepPrinter) error {
				res, err := b.Ensure(ctx, d, force)
				switch {
				case err != nil:
					p.Done("failed")
					return err
				case res.Built:
					p.Done("built in " + res.Took.Round(time.Second).String())
				default:
					p.Done("already present")
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "rebuild images even if their tag is present")
	f.BoolVarP(&verbose, "verbose", "v", false, "show debootstrap's output")
	f.StringVar(&b.Mirror, "mirror", images.DefaultMirror, "Debian mirror")
	f.StringVar(&b.CacheDir, "cache-dir", images.DefaultCacheDir, "where downloaded packages are kept between builds")
	f.StringVar(&b.TempDir, "tmp-dir", "", "where build trees are made (default $TMPDIR or /tmp; must allow exec)")
	return cmd
}

// imageRow is one line of `darse images ls`.
type imageRow struct {
	Name    string     `json:"name"`
	Tag     string     `json:"tag"`
	Present bool       `json:"present"`
	Size    int64      `json:"size"` // bytes; 0 when missing
	Created *time.Time `json:"created"`
	// Built is darse's build date label (Created for an image without it).
	Built *time.Time `json:"built"`
	// Packages is the digest of the image's Debian packages (empty for an
	// image without dpkg, or built before darse recorded it).
	Packages string `json:"packages,omitempty"`
	// Sites counts the sites running this very image; Stale those running
	// an older image that had this tag (rebuilt since: `darse images rollout`).
	Sites int `json:"sites"`
	Stale int `json:"stale"`
}

func newImagesLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the defined images: present or not, age, package digest, sites using them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			defs, err := loadImages()
			if err != nil {
				return err
			}
			e, err := a.Engine(ctx)
			if err != nil {
				return err
			}
			cs, err := e.Containers(ctx)
			if err != nil {
				return err
			}
			list := []imageRow{}
			tags := map[string][]string{} // image ID → tags, for containers on older builds
			for _, d := range defs {
				row, err := imageStatus(ctx, e, d, cs, tags)
				if err != nil {
					return err
				}
				list = append(list, row)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTAG\tSTATUS\tSIZE\tAGE\tPACKAGES\tSITES")
			for _, i := range list {
				if !i.Present {
					fmt.Fprintf(tw, "%s\t%s\tmissing\t-\t-\t-\t-\n", i.Name, i.Tag)
					continue
				}
				pk := "-"
				if h := strings.TrimPrefix(i.Packages, "sha256:"); h != "" {
					pk = h[:min(12, len(h))]
				}
				sites := strconv.Itoa(i.Sites)
				if i.Stale > 0 {
					sites += fmt.Sprintf(" (+%d on an older build)", i.Stale)
				}
				fmt.Fprintf(tw, "%s\t%s\tpresent\t%s\t%s\t%s\t%s\n", i.Name, i.Tag, humanSize(i.Size), age(time.Since(*i.Built)), pk, sites)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// imageStatus reads what the engine has under d's tag and counts the
// sites whose containers run it, or an older build of it: the engine lists
// such a container's image by ID once the tag moved on, and that image
// still has its content tag (ContentTag: the stable tag, a dash, a digest).
func imageStatus(ctx context.Context, e *engine.Engine, d images.Definition, cs []engine.ContainerInfo, tags map[string][]string) (imageRow, error) {
	row := imageRow{Name: d.Name, Tag: d.Tag}
	img, err := e.ImageInspect(ctx, d.Tag)
	if errors.Is(err, engine.ErrImageNotFound) {
		return row, nil
	}
	if err != nil {
		return row, err
	}
	l, _, err := e.ImageLabels(ctx, d.Tag)
	if err != nil {
		return row, err
	}
	row.Present, row.Size, row.Created, row.Packages = true, img.Size, when(img.Created), l[images.LabelPackages]
	row.Built = row.Created
	if t, err := time.Parse(time.RFC3339, l[images.LabelBuilt]); err == nil {
		row.Built = when(t)
	}
	cur, old := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if c.Site == "" {
			continue
		}
		switch {
		case c.Image == d.Tag || c.Image == img.ID:
			cur[c.Site] = true
		case strings.HasPrefix(c.Image, "sha256:"):
			t, seen := tags[c.Image]
			if !seen {
				if i, err := e.ImageInspect(ctx, c.Image); err == nil {
					t = i.Tags
				}
				tags[c.Image] = t
			}
			if slices.ContainsFunc(t, func(tag string) bool { return strings.HasPrefix(tag, d.Tag+"-") }) {
				old[c.Site] = true
			}
		}
	}
	row.Sites, row.Stale = len(cur), len(old)
	return row, nil
}

// age prints a duration as operators read ages: 3h, 5d.
func age(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func newImagesUpdateCmd(a *app) *cobra.Command {
	var (
		verbose, rollout bool
		ifDue            bool
		b                images.Builder
		k                ops.Rollout
		parallel         int
	)
	cmd := &cobra.Command{
		Use:   "update [NAME...] [--rollout]",
		Short: "Rebuild the images whose Debian packages (or definition) changed",
		Long: "Build each image's tree again from the release, updates and security suites\n" +
			"and import it only when its package set or its definition differs from the\n" +
			"image the engine has. With --rollout, every site is then brought onto the\n" +
			"new images (see `darse images rollout`). Needs root and the Debian mirrors.",
		RunE: func(cmd *cobra.Command, names []string) error {
			cfg, err := platform.Load(a.srv)
			if err != nil {
				return err
			}
			if u := cfg.Updates; u != nil {
				b.MaxAge = u.MaxAgeDuration()
			}
			start := time.Now()
			if ifDue {
				due, msg, err := updatesDue(a.srv, cfg.Updates, start)
				if err != nil || !due {
					if msg != "" {
						fmt.Fprintln(cmd.OutOrStdout(), msg)
					}
					return err
				}
			}
			err = a.eachImage(cmd, names, &b, verbose, func(ctx context.Context, d images.Definition, p *stepPrinter) error {
				res, err := b.Update(ctx, d)
				switch {
				case err != nil:
					p.Done("failed")
					return err
				case res.Built:
					p.Done(fmt.Sprintf("rebuilt in %s, packages %s", res.Took.Round(time.Second), shortDigest(res.Manifest.Digest)))
				default:
					p.Done("up to date")
				}
				return nil
			})
			if err != nil {
				return err
			}
			if rollout {
				if err := a.rollout(cmd, nil, true, k, parallel); err != nil {
					return err
				}
			}
			if ifDue {
				return recordUpdates(a.srv, start)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&rollout, "rollout", false, "then bring every site onto the new images, web services without downtime")
	f.BoolVar(&ifDue, "if-due", false, "only when darse.yml's updates.schedule says a run is due (the darse-updates timer's hourly call)")
	f.BoolVarP(&verbose, "verbose", "v", false, "show debootstrap's and apt's output")
	f.StringVar(&b.Mirror, "mirror", images.DefaultMirror, "Debian mirror")
	f.StringVar(&b.SecurityMirror, "security-mirror", images.DefaultSecurityMirror, "Debian security mirror")
	f.StringVar(&b.CacheDir, "cache-dir", images.DefaultCacheDir, "where downloaded packages are kept between builds")
	f.StringVar(&b.TempDir, "tmp-dir", "", "where build trees are made (default $TMPDIR or /tmp; must allow exec)")
	rollFlags(cmd, &k, &parallel)
	return cmd
}

// eachImage builds (do) each image definition named, every one when none
// is, with the builder set to the engine and a step printer per image: a
// live line on a terminal, a line per step otherwise (and with -v, where
// the tools' output on stderr would tear a live line).
func (a *app) eachImage(cmd *cobra.Command, names []string, b *images.Builder, verbose bool,
	do func(ctx context.Context, d images.Definition, p *stepPrinter) error) error {
	ctx := cmd.Context()
	defs, err := loadImages()
	if err != nil {
		return err
	}
	if defs, err = images.Select(defs, names); err != nil {
		return err
	}
	e, err := a.Engine(ctx)
	if err != nil {
		return err
	}
	b.Engine, b.Log = e, a.log
	if verbose {
		b.Output = cmd.ErrOrStderr()
	}
	out := cmd.OutOrStdout()
	live := isTerminal(out) && !verbose
	for _, d := range defs {
		p := newStepPrinter(out, live, fmt.Sprintf("%s (%s): ", d.Name, d.Tag))
		b.Progress = p.Step
		if err := do(ctx, d, p); err != nil {
			return err
		}
	}
	return nil
}

func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if h == "" {
		return "-"
	}
	return h[:min(12, len(h))]
}

// rollFlags are the flags of a rollout: its operations' waits, and how
// many sites at a time.
func rollFlags(cmd *cobra.Command, k *ops.Rollout, parallel *int) {
	f := cmd.Flags()
	f.DurationVar(&k.Ready, "ready-timeout", 60*time.Second, "how long a new web container may take to be healthy and routed")
	f.DurationVar(&k.Drain, "drain", time.Second, "how long an old web container answers, unrouted, before it is stopped")
	f.IntVar(parallel, "parallel", 2, "how many sites are rolled out at a time")
}

// maxParallel bounds --parallel: each site rolled at once runs a second
// web container and nudges the front door.
const maxParallel = 32

func newImagesRolloutCmd(a *app) *cobra.Command {
	var (
		all      bool
		k        ops.Rollout
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "rollout NAME... | --all",
		Short: "Bring sites onto the current images; web services replaced without downtime",
		Long: "Converge each running site as `darse site up` does, recreating what runs an image\n" +
			"since rebuilt, except that a routed web service is replaced blue/green: the new\n" +
			"container starts beside the old one and is routed by the front door before the\n" +
			"old one is drained and removed, so that no request is lost. Each site is one\n" +
			"operation (`darse op ls`), --parallel at a time; a stopped site is left stopped.\n" +
			"The first site whose new container does not become healthy and routed is left\n" +
			"on its old container, and no further site is begun (exit 1).",
		ValidArgsFunction: a.completeSite(),
		RunE: func(cmd *cobra.Command, names []string) error {
			if all == (len(names) > 0) {
				return errors.New("name the sites to roll out, or give --all")
			}
			return a.rollout(cmd, names, all, k, parallel)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every site")
	rollFlags(cmd, &k, &parallel)
	return cmd
}

// rollout rolls the sites named (or all) out as one operation each,
// parallel at a time, printing each site's plan once it is done, and
// begins no further site after the first failure.
func (a *app) rollout(cmd *cobra.Command, names []string, all bool, k ops.Rollout, parallel int) error {
	if parallel < 1 || parallel > maxParallel {
		return &site.FieldError{Field: "--parallel", Value: strconv.Itoa(parallel), Rule: fmt.Sprintf("must be between 1 and %d", maxParallel)}
	}
	ctx := cmd.Context()
	o, err := a.operations(ctx)
	if err != nil {
		return err
	}
	if all {
		if names, err = siteNames(ctx, o.store); err != nil {
			return err
		}
	}
	r := rolling{o: o, k: k, out: cmd.OutOrStdout(), plans: map[int64]reconcile.Plan{}}
	o.runner.Plans = r.keepPlan
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range min(parallel, max(len(names), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range jobs {
				r.one(ctx, name)
			}
		}()
	}
	for _, name := range names {
		if r.stopped() {
			break
		}
		jobs <- name
	}
	close(jobs)
	wg.Wait()
	if len(r.failed) > 0 {
		return fmt.Errorf("rollout stopped: %s (%d of %d sites rolled out)", strings.Join(r.failed, "; "), r.done, len(names))
	}
	return nil
}

// rolling is one rollout's progress, shared by its workers.
type rolling struct {
	o   *cliOps
	k   ops.Rollout
	out io.Writer

	mu     sync.Mutex
	plans  map[int64]reconcile.Plan
	failed []string // "site: why"
	done   int
}

func (r *rolling) keepPlan(op *store.Operation, plan reconcile.Plan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plans[op.ID] = plan
}

func (r *rolling) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failed) > 0
}

// one records and carries out the rollout of one site, unless another
// worker's site failed meanwhile.
func (r *rolling) one(ctx context.Context, name string) {
	if r.stopped() {
		return
	}
	start := time.Now()
	k := r.k
	op, err := r.run(ctx, name, &k)
	r.mu.Lock()
	defer r.mu.Unlock()
	if op != nil {
		printPlan(r.out, name, r.plans[op.ID])
	}
	if err != nil {
		fmt.Fprintf(r.out, "%s: failed: %v\n", name, err)
		r.failed = append(r.failed, fmt.Sprintf("site %s: %v", name, err))
		return
	}
	r.done++
	if len(r.plans[op.ID]) > 0 {
		fmt.Fprintf(r.out, "%s: rolled out in %s\n", name, time.Since(start).Round(time.Millisecond))
	}
}

func (r *rolling) run(ctx context.Context, name string, k *ops.Rollout) (*store.Operation, error) {
	id, err := r.o.runner.Submit(ctx, ops.Request{Site: name, User: r.o.user}, k)
	if err != nil {
		return nil, err
	}
	op, err := r.o.runner.RunOne(ctx, id)
	switch {
	case err != nil:
		return op, fmt.Errorf("operation %d: %w", id, err)
	case op.State == store.OpFailed:
		return op, errors.New(op.Error)
	}
	return op, nil
}

func humanSize(n int64) string {
	const mb = 1000 * 1000
	if n < mb {
		return fmt.Sprintf("%d kB", n/1000)
	}
	return fmt.Sprintf("%.0f MB", float64(n)/mb)
}

// updatesFile records when the last scheduled update run began.
func updatesFile(srv string) string { return filepath.Join(srv, "conf", "updates.last") }

// updatesDue tells whether a scheduled run is due at now, and what to say
// when it is not.
func updatesDue(srv string, u *platform.Updates, now time.Time) (bool, string, error) {
	if u == nil {
		return false, "updates: no updates.schedule in darse.yml: nothing to do", nil
	}
	var last time.Time
	b, err := os.ReadFile(updatesFile(srv))
	switch {
	case err == nil:
		if last, err = time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err != nil {
			return false, "", fmt.Errorf("%s: %w", updatesFile(srv), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return false, "", err
	}
	if !u.Due(last, now) {
		return false, "updates: not due; next run " + u.Next(last).Format(time.RFC3339), nil
	}
	return true, "", nil
}

// recordUpdates notes a run that went through, so the next is a schedule's
// slot away; a failed run is not noted and is tried again at the next call.
func recordUpdates(srv string, start time.Time) error {
	return render.WriteFile(updatesFile(srv), []byte(start.UTC().Format(time.RFC3339)+"\n"), 0o644)
}

// siteNames is every stored site's name (a command's --all).
func siteNames(ctx context.Context, st *store.Store) ([]string, error) {
	sites, err := st.ListSites(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(sites))
	for _, s := range sites {
		names = append(names, s.Name)
	}
	return names, nil
}
