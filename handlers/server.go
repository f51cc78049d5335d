// Package handlers is the HTTP face of the ledger: one Fiber app built from its
// dependencies, every route listed in routes.go, the auth middleware and the one error
// handler that maps error codes to statuses.
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
)

// Deps is everything the HTTP layer needs.
type Deps struct {
	DB *app.DB
	*app.Services
	Log            *slog.Logger
	Registry       *prometheus.Registry // metrics are registered here and served at /metrics
	TrustedProxies []netip.Prefix       // peers whose X-Forwarded-For is believed
	// Ready answers /readyz; nil means DB.Ping.
	Ready func(context.Context) error
	// RequestTimeout bounds each request's context, so the database work of a request
	// that a stopped database would hang ends in 503; zero means 10 s.
	RequestTimeout time.Duration
	// ReadTimeout is how long a request may take to arrive; zero means 15 s.
	ReadTimeout time.Duration
	// Reports has a slot for each report that may be written at once; nil means two.
	Reports chan struct{}
	// Sweeper's counts are served in /metrics; nil: none (the server starts one).
	Sweeper *app.Sweeper
}

// Server holds the dependencies the handlers use.
type Server struct {
	Deps
	metrics *httpMetrics
}

// Limits of the HTTP server.
const (
	bodyLimit   = 12 << 20 // uploads and roster files; JSON bodies are held to maxJSONBody
	readBuffer  = 64 << 10 // room for long (hostile) headers, which then get a proper answer
	readTimeout = 15 * time.Second
)

// New builds the Fiber app.
func New(d Deps) *fiber.App {
	if d.Ready == nil {
		d.Ready = d.DB.Ping
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 10 * time.Second
	}
	if d.ReadTimeout <= 0 {
		d.ReadTimeout = readTimeout
	}
	if d.Reports == nil {
		d.Reports = make(chan struct{}, maxReports)
	}
	s := &Server{Deps: d, metrics: newHTTPMetrics(d.Registry)}
	if d.Services != nil && d.Claims != nil {
		writtenCounter(d.Registry, "ledger_approvals_total", "Approvals", d.Claims.ApprovalsWritten)
	}
	if d.Services != nil && d.Activities != nil {
		writtenCounter(d.Registry, "ledger_checkins_total", "Check-ins", d.Activities.CheckinsWritten)
	}
	if d.DB != nil && d.DB.Driver == "sqlite" {
		d.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ledger_sqlite_wal_pages",
			Help: "Pages in the SQLite WAL at its last background checkpoint; near the writer's backstop (8,000) the background checkpoints are not keeping up or a long read holds the WAL."},
			func() float64 { pages, _ := d.DB.Checkpoints(); return float64(pages) }))
		d.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ledger_sqlite_checkpoint_failures_total",
			Help: "Background WAL checkpoints that failed; the writer then checkpoints past its backstop."},
			func() float64 { _, failed := d.DB.Checkpoints(); return float64(failed) }))
	}
	if d.Sweeper != nil {
		for _, c := range []struct {
			name, help string
			count      func(app.SweepCounts) uint64
		}{
			{"ledger_swept_uploads_total", "Unused evidence photos the sweeps removed, row and file (LEDGER_UPLOAD_KEEP).", func(c app.SweepCounts) uint64 { return c.Uploads }},
			{"ledger_swept_stray_files_total", "Files of the photo store that no upload named, removed by the daily walk.", func(c app.SweepCounts) uint64 { return c.Strays }},
			{"ledger_purged_refresh_tokens_total", "Expired refresh tokens the sweeps deleted.", func(c app.SweepCounts) uint64 { return c.RefreshTokens }},
			{"ledger_sweep_failures_total", "Sweeps that failed part-way (the log says why); the next hour's sweep tries again.", func(c app.SweepCounts) uint64 { return c.Failures }},
		} {
			d.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
				func() float64 { return float64(c.count(d.Sweeper.Counts())) }))
		}
	}
	f := fiber.New(fiber.Config{
		AppName:               "partyledger",
		Immutable:             true, // strings from the request outlive it safely
		BodyLimit:             bodyLimit,
		ReadBufferSize:        readBuffer,
		ReadTimeout:           d.ReadTimeout,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		CaseSensitive:         true,
		// Multipart bodies are parsed when an upload handler asks (c.FormFile), not while
		// reading every request: other routes never pay for it, and a broken body gets
		// the handler's answer in the envelope.
		DisablePreParseMultipartForm: true,
	})
	// During a shutdown every answer says Connection: close, so that clients open their
	// next request elsewhere instead of sending it down a connection about to close.
	f.Server().CloseOnShutdown = true
	f.Use(s.observe)
	s.routes(f)
	return f
}

// writtenCounter registers a writer's counter of the requests it answered from a
// transaction shared with others (written="together"), or from one of their own ("alone").
func writtenCounter(reg prometheus.Registerer, name, what string, written func() (together, alone uint64)) {
	for _, how := range []string{"together", "alone"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name,
			Help:        what + " answered from a transaction shared with others (together), or from one of their own (alone).",
			ConstLabels: prometheus.Labels{"written": how}}, func() float64 {
			together, alone := written()
			return float64(map[string]uint64{"together": together, "alone": alone}[how])
		}))
	}
}
