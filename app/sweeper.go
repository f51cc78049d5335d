package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sweeper removes what nobody will use again, in the background while the server runs:
// every hour, the uploads no claim took within keep (Uploads.Sweep) and the expired
// refresh tokens (PurgeRefreshTokens); at the first sweep and once a day after, the files
// no upload names (Uploads.Strays, which walks the whole store).
type Sweeper struct {
	stop context.CancelFunc
	done sync.WaitGroup
	// What the sweeps removed, and the sweeps that failed, since the start (Counts).
	uploads, strays, tokens, failures atomic.Uint64
}

// SweepCounts is what a Sweeper's sweeps removed since it started, and how many of them
// failed: the metrics of /metrics.
type SweepCounts struct {
	Uploads, Strays, RefreshTokens, Failures uint64
}

// Counts returns what the sweeps removed and how many failed, so far.
func (w *Sweeper) Counts() SweepCounts {
	return SweepCounts{Uploads: w.uploads.Load(), Strays: w.strays.Load(), RefreshTokens: w.tokens.Load(), Failures: w.failures.Load()}
}

// sweepEvery is how often the sweeper runs; strayEvery, how many of its runs pass
// between two walks of the store.
const (
	sweepEvery = time.Hour
	strayEvery = 24
)

// StartSweeper starts sweeping after first, then every hour, until Stop.
func StartSweeper(db *DB, uploads *Uploads, keep, first time.Duration, log *slog.Logger) *Sweeper {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Sweeper{stop: cancel}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		wait := first
		for run := 0; ; run++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = sweepEvery
			w.sweepOnce(ctx, db, uploads, keep, run%strayEvery == 0, log)
		}
	}()
	return w
}

// Stop ends the sweeps, waiting for one under way to give up.
func (w *Sweeper) Stop() {
	w.stop()
	w.done.Wait()
}

// sweepOnce sweeps the expired refresh tokens, the unused uploads, and the stray files
// with strays, and logs what it removed and what failed.
func (w *Sweeper) sweepOnce(ctx context.Context, db *DB, uploads *Uploads, keep time.Duration, strays bool, log *slog.Logger) {
	start := time.Now()
	n, err := PurgeRefreshTokens(ctx, db, start)
	w.tokens.Add(uint64(n))
	if err != nil && ctx.Err() == nil {
		w.failures.Add(1)
		log.Warn("purging expired refresh tokens", "err", err.Error(), "purged", n)
	} else if n > 0 {
		log.Info("purged expired refresh tokens", "purged", n, "ms", time.Since(start).Milliseconds())
	}
	start = time.Now()
	done, err := uploads.Sweep(ctx, keep)
	if err == nil && strays {
		var s UploadSweep
		s, err = uploads.Strays(ctx, keep)
		done.Strays = s.Strays
	}
	w.uploads.Add(uint64(done.Uploads))
	w.strays.Add(uint64(done.Strays))
	if err != nil && ctx.Err() == nil {
		w.failures.Add(1)
		log.Warn("sweeping unused photos", "err", err.Error(), "removed", done.Uploads, "strays", done.Strays)
		return
	}
	if done.Uploads > 0 || done.Strays > 0 {
		log.Info("swept unused photos", "removed", done.Uploads, "bytes", done.Bytes, "strays", done.Strays,
			"keep", keep.String(), "ms", time.Since(start).Milliseconds())
	}
}
