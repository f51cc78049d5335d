// Command server runs the points-ledger HTTP API. Configuration comes from the
// environment (see README); it migrates the database at start and stops gracefully on
// SIGTERM, letting requests in flight finish.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // Asia/Shanghai must load in a minimal image too

	"github.com/prometheus/client_golang/prometheus"

	"partyledger/app"
	"partyledger/handlers"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// healthcheck asks the local server's /readyz, for container health checks (the image
// has no curl). It returns the process exit code.
func healthcheck(getenv func(string) string) int {
	addr := getenv("LEDGER_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 2
	}
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// shutdownGrace is how long requests in flight get to finish after SIGTERM.
const shutdownGrace = 25 * time.Second

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	start := time.Now()
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	logw := app.NewLogWriter(stdout, 100*time.Millisecond)
	defer logw.Close()
	log := app.NewLogger(logw, cfg.LogLevel)
	db, err := openWithRetry(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrated the database", "versions", applied)
	}
	logins, err := app.Bootstrap(ctx, db, cfg, log)
	if err != nil {
		return err
	}
	svc := app.NewServices(cfg, db, nil, log)
	// Unused photos go after LEDGER_UPLOAD_KEEP, expired refresh tokens at once; the
	// first sweep waits a minute, out of the way of a start under load.
	sweeper := app.StartSweeper(db, svc.Uploads, cfg.UploadKeep, time.Minute, log)
	defer sweeper.Stop() // before the database closes
	f := handlers.New(handlers.Deps{
		DB: db, Services: svc, Log: log,
		Registry: prometheus.NewRegistry(), TrustedProxies: cfg.TrustedProxies,
		RequestTimeout: cfg.RequestTimeout, Sweeper: sweeper,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.Demo {
		log.Warn("DEMO MODE: demo data, and WeChat codes demo:<member_no> log anyone in; never use it in production")
		for _, l := range logins {
			log.Info("demo login", "who", l.Who, "code", l.Code)
		}
	}
	log.Info("listening", "addr", ln.Addr().String(), "driver", cfg.DBDriver, "startup_ms", time.Since(start).Milliseconds())
	logw.Flush()

	served := make(chan error, 1)
	go func() { served <- f.Listener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	if err := f.ShutdownWithTimeout(shutdownGrace); err != nil {
		log.Error("shutdown", "err", err.Error())
	}
	log.Info("stopped")
	return nil
}

// openWithRetry opens the database, waiting up to LEDGER_DB_WAIT (30 s) for it to come up,
// which is what a server started beside its database (docker compose) needs.
func openWithRetry(ctx context.Context, cfg app.Config, log *slog.Logger) (*app.DB, error) {
	deadline := time.Now().Add(cfg.DBWait)
	for {
		db, err := app.OpenDBPool(ctx, cfg.DBDriver, cfg.DBDSN, cfg.DBMaxConns)
		if err == nil {
			return db, nil
		}
		if time.Now().After(deadline) || errors.Is(ctx.Err(), context.Canceled) {
			return nil, err
		}
		log.Warn("database not reachable yet, retrying", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
