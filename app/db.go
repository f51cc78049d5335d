package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"partyledger/migrations"
	"partyledger/models"
)

// DB is the service's database. W takes writes and the reads that must see them; R takes
// consistent reads. On SQLite they are two pools over one file (one writer connection, so
// writers queue in Go instead of spinning on SQLITE_BUSY, and several readers beside it in
// WAL mode); on MySQL they are the same pool.
type DB struct {
	Driver string
	W      *gorm.DB
	R      *gorm.DB
	sqlW   *sql.DB
	sqlR   *sql.DB
	rules  sync.Map      // rule versions, which never change: "code\x00version" → models.Rule
	txg    *txGroup      // SQLite: writeTx's group commit
	ckpt   *checkpointer // SQLite: the WAL's checkpoints, beside the writer
	file   string        // SQLite: the database file
	// MySQL: the connector the pool was opened with, for the migrations' own pool
	connector driver.Connector
}

// OpenDB opens the database of the given driver ("sqlite" or "mysql") with the default
// pool size. For SQLite the DSN is a file path whose folder is created if needed.
func OpenDB(ctx context.Context, driver, dsn string) (*DB, error) {
	return OpenDBPool(ctx, driver, dsn, 0)
}

// DefaultMaxConns is the MySQL pool size when none is configured.
const DefaultMaxConns = 32

// OpenDBPool is OpenDB with a MySQL pool of maxConns connections (0: DefaultMaxConns);
// idle connections are kept up to the same number, so bursts don't reconnect.
func OpenDBPool(ctx context.Context, driver, dsn string, maxConns int) (*DB, error) {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	// No PrepareStmt: GORM's statement cache deadlocks when every connection of a pool is
	// in a transaction waiting for a statement that a caller outside one is preparing and
	// needs a connection for (go-gorm/gorm#7465, #7350). With SQLite's one writer that is
	// two concurrent writes on a cold cache; the fault tests met it after a restart.
	cfg := &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	d := &DB{Driver: driver}
	switch driver {
	case "sqlite":
		d.file = dsn
		if dir := filepath.Dir(dsn); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("open db: %w", err)
			}
		}
		// The first connection to a new file turns it to WAL, which another process doing
		// the same at that moment answers with SQLITE_BUSY: opening takes the file's lock.
		unlock, err := lockFile(ctx, d.lockPath())
		if err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		defer unlock()
		base := "file:" + dsn + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_time_format=sqlite"
		// The writer checkpoints the WAL only as a backstop; checkpointer does it beside it.
		w, err := newCachingConnector(base + "&_txlock=immediate&_pragma=wal_autocheckpoint(" + strconv.Itoa(walBackstopPages) + ")")
		if err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		d.sqlW = sql.OpenDB(w)
		d.sqlW.SetMaxOpenConns(1)
		d.sqlW.SetMaxIdleConns(1)
		r, err := newCachingConnector(base + "&_pragma=query_only(1)")
		if err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		d.sqlR = sql.OpenDB(r)
		d.sqlR.SetMaxOpenConns(8)
		d.sqlR.SetMaxIdleConns(8)
		if d.W, err = gorm.Open(sqlite.Dialector{DriverName: "sqlite", Conn: d.sqlW}, cfg); err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		if d.R, err = gorm.Open(sqlite.Dialector{DriverName: "sqlite", Conn: d.sqlR}, cfg); err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		d.txg = newTxGroup(d)
		if d.ckpt, err = startCheckpointer(base); err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
	case "mysql":
		mcfg, err := MySQLConfig(dsn)
		if err != nil {
			return nil, err
		}
		if err := readCommitted(ctx, mcfg); err != nil {
			return nil, err
		}
		connector, err := mysql.NewConnector(mcfg)
		if err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		d.connector = connector
		d.sqlW = sql.OpenDB(connector)
		d.sqlW.SetMaxOpenConns(maxConns)
		d.sqlW.SetMaxIdleConns(maxConns)
		d.sqlW.SetConnMaxLifetime(10 * time.Minute)
		d.sqlR = d.sqlW
		if d.W, err = gorm.Open(gormmysql.New(gormmysql.Config{Conn: d.sqlW}), cfg); err != nil {
			return nil, fmt.Errorf("open db: %w", err)
		}
		d.R = d.W
	default:
		return nil, fmt.Errorf("open db: unknown driver %q", driver)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Ping(pctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("open db: %w", err)
	}
	return d, nil
}

// MySQLConfig parses a go-sql-driver DSN and forces what the service relies on: UTC times
// parsed into time.Time and the utf8mb4 character set (Chinese names, emoji in notes).
func MySQLConfig(dsn string) (*mysql.Config, error) {
	mcfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open db: bad mysql DSN: %w", redactDSNError(dsn, err))
	}
	mcfg.ParseTime = true
	mcfg.Loc = time.UTC
	// Without prepared statements, arguments are put into the statement by the driver
	// (escaped for the utf8mb4 connection): one round trip per statement instead of a
	// prepare, an execute and a close.
	mcfg.InterpolateParams = true
	if err := mcfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_unicode_ci")); err != nil {
		return nil, fmt.Errorf("open db: %w", err)
	}
	if mcfg.Timeout == 0 {
		mcfg.Timeout = 5 * time.Second
	}
	return mcfg, nil
}

// readCommitted makes READ COMMITTED the isolation of every session the pool opens, so
// that no transaction pays a round trip to set it. The variable is transaction_isolation
// on MySQL 8, TiDB and MariaDB 11.1+, tx_isolation on older MariaDB; the server says which.
func readCommitted(ctx context.Context, mcfg *mysql.Config) error {
	probe, err := mysql.NewConnector(mcfg)
	if err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	db := sql.OpenDB(probe)
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	variable := "transaction_isolation"
	var v string
	if err := db.QueryRowContext(pctx, "SELECT @@transaction_isolation").Scan(&v); err != nil {
		var myErr *mysql.MySQLError
		if !errors.As(err, &myErr) || myErr.Number != 1193 { // 1193: unknown system variable
			return fmt.Errorf("open db: %w", err)
		}
		variable = "tx_isolation"
	}
	if mcfg.Params == nil {
		mcfg.Params = map[string]string{}
	}
	mcfg.Params[variable] = "'READ-COMMITTED'"
	return nil
}

// redactDSNError is a DSN parse error without the DSN's credentials. The driver's
// messages may quote a piece of the DSN (a password with a slash, in a DSN without its
// database name, is read as the name and quoted), so the message is cut before the first
// piece of it, four characters or more, that also occurs in the DSN up to its last "@"
// (user and password, and the "@" that ends them, so that a quoted tail of the password
// as short as three characters is caught too).
func redactDSNError(dsn string, err error) error {
	msg := err.Error()
	at := strings.LastIndex(dsn, "@")
	if at <= 0 {
		return errors.New(msg) // no credentials
	}
	creds := dsn[:at+1]
	n := min(4, len(creds))
	cut := len(msg)
	for i := 0; i+n <= len(creds); i++ {
		if j := strings.Index(msg[:cut], creds[i:i+n]); j >= 0 {
			cut = j
		}
	}
	if cut < len(msg) {
		msg = strings.TrimRight(msg[:cut], ` :"'`) + " (the rest is not shown: it quotes the DSN's credentials)"
	}
	return errors.New(msg)
}

// Ping checks that both pools reach the database and, on SQLite, that it takes writes.
// MySQL's driver answers a ping with a round trip to the server (COM_PING), pooled
// connection or not.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.sqlW.PingContext(ctx); err != nil {
		return err
	}
	if d.sqlR != d.sqlW {
		if err := d.sqlR.PingContext(ctx); err != nil {
			return err
		}
	}
	if d.Driver == "sqlite" {
		// The file is always there; what can stop is writing to it, when another process
		// holds its write lock. Ready means the write lock can be had (BEGIN IMMEDIATE).
		tx, err := d.sqlW.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		return tx.Rollback()
	}
	return nil
}

// Close closes both pools.
func (d *DB) Close() error {
	var err error
	if d.ckpt != nil {
		err = d.ckpt.close()
	}
	err = errors.Join(err, d.sqlW.Close())
	if d.sqlR != d.sqlW {
		err = errors.Join(err, d.sqlR.Close())
	}
	return err
}

// SQL returns the writer's *sql.DB, for tools that talk SQL directly.
func (d *DB) SQL() *sql.DB { return d.sqlW }

func (d *DB) gooseProvider() (*goose.Provider, error) { return d.gooseProviderOn(d.sqlW) }

func (d *DB) gooseProviderOn(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	fsys, err := migrations.FS(d.Driver)
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectSQLite3
	if d.Driver == "mysql" {
		dialect = goose.DialectMySQL
	}
	return goose.NewProvider(dialect, db, fsys, opts...)
}

// lockPath is the file whose lock SQLite's opening and migrating take, beside the
// database file as SQLite's own -wal and -shm are.
func (d *DB) lockPath() string { return d.file + "-lock" }

// Migrate brings the schema up to date and returns the versions it applied. Processes
// that migrate one database at once do it one after the other: on MySQL under goose's
// lock, on SQLite under a lock on a file beside the database's (see lockFile).
func (d *DB) Migrate(ctx context.Context) ([]int64, error) {
	db, opts := d.sqlW, []goose.ProviderOption(nil)
	if d.file != "" {
		unlock, err := lockFile(ctx, d.lockPath())
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		defer unlock()
	}
	if d.connector != nil {
		// Replicas that start at once, or the server beside `ledgerctl migrate`, would each
		// read the same version and apply the same migration; all but one then stop at
		// "table already exists", and a migration that changes data would run twice.
		// goose's MySQL lock (a row of table goose_lock, held with a lease) runs them one
		// after the other, and the next finds nothing left to apply. goose holds one
		// connection for the run and its lock takes others, so the run has a pool of its
		// own, whatever LEDGER_DB_MAX_CONNS allows.
		locker, err := lock.NewMySQLTableLocker(lock.WithTableLockTimeout(250*time.Millisecond, 480),
			lock.WithTableLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		db = sql.OpenDB(d.connector)
		defer db.Close()
		db.SetMaxOpenConns(4)
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := d.gooseProviderOn(db, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []int64
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// SchemaVersion returns the version the database is at.
func (d *DB) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := d.gooseProvider()
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

// dbError turns a database error into a domain error where one fits: a unique-key clash
// is a conflict and an unreachable database is "unavailable" (both keep the cause for the
// log); anything else is wrapped with the operation's name and stays internal.
func dbError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isDuplicate(err):
		return &models.Error{Code: models.EConflict, Message: "it already exists", Err: fmt.Errorf("%s: %w", op, err)}
	case IsUnavailable(err):
		return Unavailable(fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Unavailable is the one answer to a database that stopped answering (a request's
// deadline passed, a connection broke, the SQLite file stayed locked): 503 with a
// Retry-After, the cause kept for the log.
func Unavailable(cause error) *models.Error {
	return &models.Error{Code: models.EUnavailable, Message: "the database is unavailable, try again shortly", RetryAfter: 2, Err: cause}
}

// forUpdate is tx whose next read takes the rows it reads for update, on MySQL, so that
// writes that meet on them run one after the other, each reading what the one before it
// committed (READ COMMITTED's reads lock nothing). SQLite has one writer, which already
// runs them one after the other, and no FOR UPDATE.
func forUpdate(tx *gorm.DB) *gorm.DB {
	if tx.Dialector.Name() == "mysql" {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// lockMemberRow takes a member's row for update (see forUpdate).
func lockMemberRow(tx *gorm.DB, id int64) error {
	var ids []int64
	return dbError("lock member row", forUpdate(tx).Model(&models.Member{}).Where("id = ?", id).Pluck("id", &ids).Error)
}

// isNotFound reports whether err says the row is not there.
func isNotFound(err error) bool {
	var me *models.Error
	return errors.Is(err, gorm.ErrRecordNotFound) || (errors.As(err, &me) && me.Code == models.ENotFound)
}

// hidden answers a lookup the actor may or may not see: notFound when the row is not
// there or when it is but the actor may not see it (so that existence does not leak),
// nil when visible, and any other error as it is (a database that stopped answering
// is 503, not "no such thing").
func hidden(err error, visible bool, notFound error) error {
	switch {
	case err != nil && !isNotFound(err):
		return err
	case err != nil || !visible:
		return notFound
	}
	return nil
}

// isDuplicate reports whether err is a unique-key violation. GORM translates MySQL's
// error; its SQLite dialector knows only the cgo driver's error type, so modernc's
// extended result codes are checked here.
func isDuplicate(err error) bool {
	var sqliteErr interface{ Code() int }
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	if errors.As(err, &sqliteErr) {
		c := sqliteErr.Code()
		return c == 2067 || c == 1555 // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == 1062
}

// isForeignKey reports whether err is a foreign key's refusal: a row that names a row
// that is not there, or the delete of a row that others name.
func isForeignKey(err error) bool {
	var sqliteErr interface{ Code() int }
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return true
	}
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code() == 787 // SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && (myErr.Number == 1451 || myErr.Number == 1452)
}

// unavailableMySQL are the server's answers that mean "not now" rather than "wrong
// statement": too many connections (1040, 1203), access denied while connecting (1045,
// as during a credential rotation or failover), shutdown in progress (1053), the
// account locked (MySQL 3118, MariaDB 4151), the connection or query killed (1927, 1317),
// and a transaction aborted for contention even after retries (deadlock 1213, lock wait
// timeout 1205, MariaDB's record changed 1020).
var unavailableMySQL = map[uint16]bool{1020: true, 1040: true, 1045: true, 1053: true, 1203: true, 1205: true, 1213: true, 1317: true, 1927: true, 3118: true, 4151: true}

// IsUnavailable reports whether err means the database cannot be reached right now
// rather than that the statement was wrong.
func IsUnavailable(err error) bool {
	var netErr net.Error
	var sqliteErr interface{ Code() int }
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &myErr):
		return unavailableMySQL[myErr.Number]
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, sql.ErrConnDone), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &netErr):
		return true
	case errors.As(err, &sqliteErr):
		c := sqliteErr.Code() & 0xff
		return c == 5 || c == 6 // SQLITE_BUSY, SQLITE_LOCKED after busy_timeout
	}
	return false
}

// scan runs a query built with gorm (db.Raw and the like) and scans its rows into dest,
// as gorm's Scan does. gorm's Scan also hands every call to a trace recorder that formats
// the whole statement with its arguments into a string, whether or not anything is
// logged; on the reads members make most (summaries, leaderboards) that string was a
// good part of what a request allocated.
func scan(q *gorm.DB, dest any) error {
	rows, err := q.Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := q.ScanRows(rows, dest); err != nil {
			return err
		}
	}
	return rows.Err()
}
