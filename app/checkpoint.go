package app

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// SQLite's WAL is checkpointed (its pages copied back into the database file, and the file
// synced) beside the writer, not by it. By default the connection whose commit takes the
// WAL past 1,000 pages checkpoints it inside that commit; with one writer connection that
// is the ledger's writer, and every write queued behind it waits. bench/ledger's approval
// phase spent about 8 % of the writer's time there. Here the writer checkpoints only as a
// backstop (walBackstopPages), and a goroutine with a connection of its own runs a PASSIVE
// checkpoint every checkpointEvery: it copies what it can without waiting for any lock and
// never blocks a reader or the writer. Once the whole WAL has been copied and no reader
// needs it, the writer's next transaction starts it again from the beginning, so it does
// not grow.
const (
	checkpointEvery  = 100 * time.Millisecond
	walBackstopPages = 8000 // about 32 MB at SQLite's default 4 KiB pages
)

// checkpointer runs the PASSIVE checkpoints of one SQLite database.
type checkpointer struct {
	db       *sql.DB // one connection of its own
	stop     chan struct{}
	closing  sync.Once
	done     sync.WaitGroup
	walPages atomic.Int64  // the WAL's pages at the last checkpoint
	runs     atomic.Uint64 // checkpoints done
	failed   atomic.Uint64 // checkpoints that returned an error
}

// startCheckpointer opens a connection to the database at dsn and checkpoints its WAL
// until close.
func startCheckpointer(dsn string) (*checkpointer, error) {
	conn, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{})}
	c.done.Add(1)
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var busy, log, done int64
		err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done)
		cancel()
		if err != nil {
			c.failed.Add(1)
			continue
		}
		c.walPages.Store(log)
		c.runs.Add(1)
	}
}

// close stops the checkpoints and closes the connection; again, it does nothing. SQLite
// checkpoints the WAL when the database's last connection closes.
func (c *checkpointer) close() error {
	c.closing.Do(func() { close(c.stop) })
	c.done.Wait()
	return c.db.Close()
}

// Checkpoints returns the pages in SQLite's WAL at its last background checkpoint and the
// background checkpoints that failed; zeros on MySQL.
func (d *DB) Checkpoints() (walPages int64, failed uint64) {
	if d.ckpt == nil {
		return 0, 0
	}
	return d.ckpt.walPages.Load(), d.ckpt.failed.Load()
}
