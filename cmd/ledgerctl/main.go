// Command ledgerctl is the admin's command line: it migrates the database, seeds an
// empty one, and imports rosters. It reads the same environment as the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"partyledger/app"
	"partyledger/models"
)

const usage = `usage: ledgerctl COMMAND [ARGS]

Commands:
  migrate         bring the database schema up to date
  seed            on an empty database: create the root committee and the admin from
                  LEDGER_ADMIN_USERNAME/LEDGER_ADMIN_PASSWORD, or the demo data with LEDGER_DEMO=1
  gen [-members N] [-branches N] [-months N] [-entry-members N] [-seed N]
                  fill an empty database with a provincial data set for benchmarks
                  (default 1,000,000 members in 30,000 branches, 12 months of totals,
                  this month as ledger entries for the first 100,000), led by one more
                  member placed at the root
  import FILE     import a roster (CSV or XLSX; columns member_no/党员编号, name/姓名,
                  branch/支部, optional group/党小组 and status/状态), all or nothing
  verify          recompute every running total from the entries and check every member's
                  hash chain; exits 1 naming the first mismatch
  sweep           remove the evidence photos no claim took within LEDGER_UPLOAD_KEEP (72h),
                  the files under LEDGER_DATA_DIR/uploads that no upload names, and the
                  expired refresh tokens (the server does this by itself too)
  report [-org ID] [-period YYYY-MM] [-format xlsx|csv] [-sheet members|branches] -o FILE
                  write the monthly report of an org subtree (default: the whole tree,
                  this month, xlsx); -o - writes to standard output

The database comes from LEDGER_DB_DRIVER and LEDGER_DB_DSN, as for the server.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	isTTY := term.IsTerminal(int(os.Stderr.Fd()))
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTTY); err != nil {
		fmt.Fprintln(os.Stderr, "ledgerctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, isTTY bool) error {
	fs := flag.NewFlagSet("ledgerctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	db, err := app.OpenDB(ctx, cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "migrate":
		v, err := db.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema at version %d\n", v)
		return nil
	case "seed":
		logins, err := app.Bootstrap(ctx, db, cfg, app.NewLogger(stderr, cfg.LogLevel))
		if err != nil {
			return err
		}
		for _, l := range logins {
			fmt.Fprintf(stdout, "%-60s %s\n", l.Who, l.Code)
		}
		return nil
	case "verify":
		rep, err := app.Verify(ctx, db)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "verified %d entries of %d members: chains unbroken, totals agree\n", rep.Entries, rep.Members)
		return nil
	case "sweep":
		uploads := app.NewUploads(db, app.FSStore{Dir: cfg.DataDir})
		done, err := uploads.Sweep(ctx, cfg.UploadKeep)
		if err != nil {
			return err
		}
		strays, err := uploads.Strays(ctx, cfg.UploadKeep)
		if err != nil {
			return err
		}
		tokens, err := app.PurgeRefreshTokens(ctx, db, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d unused photos (%d bytes), %d files that no upload names and %d expired refresh tokens\n",
			done.Uploads, done.Bytes, strays.Strays, tokens)
		return nil
	case "report":
		return report(ctx, db, cfg, rest, stdout, stderr)
	case "gen":
		return gen(ctx, db, cfg, rest, stdout, stderr, isTTY)
	case "import":
		if len(rest) != 1 {
			return errors.New("usage: ledgerctl import FILE")
		}
		return importRoster(ctx, db, cfg, rest[0], stdout, stderr, isTTY)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func importRoster(ctx context.Context, db *app.DB, cfg app.Config, path string, stdout, stderr io.Writer, isTTY bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := app.ParseRoster(f)
	if err != nil {
		return explain(err, stderr)
	}
	actor, err := app.SystemActor(ctx, db)
	if err != nil {
		return err
	}
	var progress func(done, total int)
	if isTTY {
		bar := progressbar.NewOptions(len(rows), progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		progress = func(done, _ int) { _ = bar.Set(done) }
		defer bar.Finish()
	}
	res, err := app.NewMembers(db, cfg.InviteTTL).Import(ctx, actor, rows, progress)
	if err != nil {
		return explain(err, stderr)
	}
	fmt.Fprintf(stdout, "imported %d rows: %d created, %d updated, %d unchanged\n", len(rows), res.Created, res.Updated, res.Unchanged)
	return nil
}

// gen generates a benchmark data set.
func gen(ctx context.Context, db *app.DB, cfg app.Config, args []string, stdout, stderr io.Writer, isTTY bool) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opt := app.GenOptions{}
	fs.IntVar(&opt.Members, "members", 1_000_000, "members in all")
	fs.IntVar(&opt.Branches, "branches", 30_000, "branches in all")
	fs.IntVar(&opt.Months, "months", 12, "months of totals, this one and those before it (1-12)")
	fs.IntVar(&opt.EntryMembers, "entry-members", 100_000, "members whose month is written as ledger entries")
	fs.Uint64Var(&opt.Seed, "seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if isTTY {
		var bar *progressbar.ProgressBar
		stage := ""
		opt.Progress = func(s string, done, total int) {
			if s != stage {
				if bar != nil {
					bar.Finish()
				}
				stage = s
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(s), progressbar.OptionClearOnFinish())
			}
			_ = bar.Set(done)
		}
	}
	rep, err := app.Generate(ctx, db, opt, cfg.Location, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generated %d orgs, %d members, %d member months and %d entries in %s; root org %d, led by member %d\n",
		rep.Orgs, rep.Members, rep.MemberMonths, rep.Entries, rep.Took.Round(time.Millisecond), rep.Root, rep.Leader)
	return nil
}

// report writes a monthly report as the system actor (an admin over the whole tree).
func report(ctx context.Context, db *app.DB, cfg app.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	org := fs.Int64("org", 0, "org id (default: the root committee)")
	period := fs.String("period", "", "month, YYYY-MM (default: this month)")
	format := fs.String("format", "xlsx", "xlsx or csv")
	sheet := fs.String("sheet", "", "for csv: members (default) or branches")
	out := fs.String("o", "", "output file, - for standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: ledgerctl report [-org ID] [-period YYYY-MM] [-format xlsx|csv] [-sheet members|branches] -o FILE")
	}
	actor, err := app.SystemActor(ctx, db)
	if err != nil {
		return err
	}
	if *org == 0 && len(actor.Grants) > 0 {
		*org = actor.Grants[0].OrgID
	}
	agg := app.NewAggregates(db, cfg.Location, cfg.StarThresholds, cfg.ReportMaxRows)
	rep, err := agg.PrepareReport(ctx, actor, *org, *period, *format, *sheet)
	if err != nil {
		return err
	}
	if *out == "-" {
		return rep.WriteTo(ctx, stdout)
	}
	if err := writeFile(*out, func(w io.Writer) error { return rep.WriteTo(ctx, w) }); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d member rows to %s\n", rep.Rows, *out)
	return nil
}

// writeFile writes the file at path whole or not at all. A report streams from the
// database, so it can fail half-way (the database gone, the disk full): it is written
// to a new file beside path and renamed over it once complete, which leaves the previous
// report as it was, and no half of one, when it fails. The file gets the mode os.Create
// would give it (an existing file's, else 0666 less the umask). A path that is not a
// regular file (/dev/stdout, a pipe) is written in place: renaming over it would replace
// the device.
func writeFile(path string, write func(io.Writer) error) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // a link keeps pointing at the new report
	}
	mode := os.FileMode(0)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			if err := write(f); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}
		mode = st.Mode().Perm()
	}
	tmp, err := app.WriteTemp(filepath.Dir(path), "."+filepath.Base(path)+".", 0o666, func(f *os.File) error {
		if err := write(f); err != nil {
			return err
		}
		if mode != 0 {
			return f.Chmod(mode)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// explain prints the rows of an import error, one a line, and returns the error.
func explain(err error, stderr io.Writer) error {
	var me *models.Error
	if errors.As(err, &me) {
		for _, r := range me.Rows {
			fmt.Fprintf(stderr, "row %d: %s %s\n", r.Row, r.Field, r.Message)
		}
		for k, v := range me.Fields {
			fmt.Fprintf(stderr, "%s: %s\n", k, v)
		}
		return errors.New(me.Message)
	}
	return err
}
