package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"partyledger/models"
)

// GenOptions shape a generated data set for benchmarks.
type GenOptions struct {
	Members      int // members in all
	Branches     int // branches in all, 10 to a general branch, 10 general branches to a committee
	Months       int // months of totals, this one and the ones before it
	EntryMembers int // members (the first ones) whose month is written as real ledger entries
	Seed         uint64
	// Progress, when set, hears how far each stage is.
	Progress func(stage string, done, total int)
}

// GenReport is what Generate wrote.
type GenReport struct {
	Orgs, Members, MemberMonths, Entries int
	Root, Leader                         int64 // the root org and its leader (a member at the root, in no branch)
	Took                                 time.Duration
}

// Generate fills an empty database with a provincial data set: a root committee, a
// committee for every 100 branches, general branches of 10 branches, members spread
// evenly with Chinese names, and Months of member_months rows from a diligence per
// member; one more member, at the root, leads it. The current month of the first EntryMembers members is written as real
// entries through bulkLedger (chains, totals, flags); every other month is written as
// totals only, so `ledgerctl verify` does not hold for a generated database. It is for
// benchmarks: it writes with multi-row INSERTs, with ids it assigns itself.
func Generate(ctx context.Context, db *DB, opt GenOptions, loc *time.Location, now time.Time) (GenReport, error) {
	start := time.Now()
	var rep GenReport
	if opt.Members < 1 || opt.Branches < 1 || opt.Months < 1 || opt.Months > 12 || opt.EntryMembers < 0 || opt.EntryMembers > opt.Members {
		return rep, errors.New("gen: members and branches must be positive, months 1 to 12, entry members at most members")
	}
	var n int64
	if err := db.R.WithContext(ctx).Model(&models.Org{}).Count(&n).Error; err != nil {
		return rep, fmt.Errorf("gen: %w", err)
	}
	if n > 0 {
		return rep, errors.New("gen: the database has orgs already; generate into an empty one")
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	conn, release, err := genConn(ctx, db)
	if err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 1949))
	ts := now.UTC().Truncate(time.Second)

	// The tree, with ids assigned here so that paths need no reading back.
	orgs := newBulkInsert(conn, "orgs", "id", "parent_id", "kind", "name", "path", "depth", "created_at", "updated_at")
	var id int64
	add := func(parent *int64, parentPath string, depth int, kind models.OrgKind, name string) (int64, string) {
		id++
		path := models.ChildPath(parentPath, id)
		orgs.row(id, parent, string(kind), name, path, depth, ts, ts)
		return id, path
	}
	root, rootPath := add(nil, "/", 0, models.KindCommittee, "示范省委")
	rep.Root = root
	var branches []int64
	committeeOf := map[int64]int64{}
	committees := (opt.Branches + 99) / 100
	for c := 0; c < committees && len(branches) < opt.Branches; c++ {
		cid, cpath := add(&root, rootPath, 1, models.KindCommittee, fmt.Sprintf("第%d高校党委", c+1))
		for g := 0; g < 10 && len(branches) < opt.Branches; g++ {
			gid, gpath := add(&cid, cpath, 2, models.KindGeneralBranch, fmt.Sprintf("%s学院党总支", demoOrdinals[g]))
			for b := 0; b < 10 && len(branches) < opt.Branches; b++ {
				bid, _ := add(&gid, gpath, 3, models.KindBranch, fmt.Sprintf(demoBranchKinds[b%3], demoOrdinals[b]))
				branches = append(branches, bid)
				committeeOf[bid] = cid
			}
		}
		if err := orgs.flush(ctx); err != nil {
			return rep, err
		}
	}
	if err := orgs.done(ctx); err != nil {
		return rep, err
	}
	rep.Orgs = int(id)

	// Members, spread evenly and in order: the first members fill the first branches, so
	// that the part written as entries is whole branches and committees.
	members := newBulkInsert(conn, "members", "id", "member_no", "name", "branch_id", "status", "auth_rev", "created_at", "updated_at")
	branchOf := func(m int) int64 { return branches[int(int64(m)*int64(len(branches))/int64(opt.Members))] }
	for m := 0; m < opt.Members; m++ {
		name := string(demoSurnames[rng.IntN(len(demoSurnames))]) + string(demoGiven[rng.IntN(len(demoGiven))])
		if rng.IntN(3) > 0 {
			name += string(demoGiven[rng.IntN(len(demoGiven))])
		}
		members.row(m+1, fmt.Sprintf("P%07d", m+1), name, branchOf(m), "active", 0, ts, ts)
		if err := members.flush(ctx); err != nil {
			return rep, err
		}
		if m%50000 == 0 {
			progress("members", m, opt.Members)
		}
	}
	if err := members.done(ctx); err != nil {
		return rep, err
	}
	rep.Members = opt.Members
	// One more member, placed at the root committee (staff, in no branch), leads the
	// province, for benchmarks that read as leadership.
	rep.Leader = int64(opt.Members + 1)
	members.row(rep.Leader, "P-LEADER", "省委组织部", root, "active", 0, ts, ts)
	if err := members.done(ctx); err != nil {
		return rep, err
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO member_roles (member_id, role, org_id, created_at) VALUES (?, 'leader', ?, ?)", rep.Leader, root, ts); err != nil {
		return rep, fmt.Errorf("gen roles: %w", err)
	}

	// The current month of the first EntryMembers members: real entries, through the
	// writer pool (on SQLite its one connection, so ours goes back first).
	release()
	thisMonth := models.PeriodOf(now, loc)
	if opt.EntryMembers > 0 {
		n, err := genEntries(ctx, db, opt, branchOf, loc, now, rng, progress)
		if err != nil {
			return rep, err
		}
		rep.Entries = n
	}

	// Months of totals from each member's diligence.
	diligence := make([]float64, opt.Members)
	for i := range diligence {
		diligence[i] = rng.Float64()
	}
	if conn, release, err = genConn(ctx, db); err != nil {
		return rep, err
	}
	defer release()
	months := newBulkInsert(conn, "member_months", "member_id", "period", "branch_id", "points", "four_ones")
	local := now.In(loc)
	periods := make([]models.Period, 0, opt.Months)
	for back := opt.Months - 1; back >= 0; back-- {
		periods = append(periods, models.Period(time.Date(local.Year(), local.Month()-time.Month(back), 1, 0, 0, 0, 0, loc).Format("2006-01")))
	}
	hist := map[cpDelta]int64{} // N left 0: the key
	// Member by member, in the order of the primary key, so that InnoDB appends.
	for m := 0; m < opt.Members; m++ {
		for _, per := range periods {
			if per == thisMonth && m < opt.EntryMembers {
				continue // written with its entries
			}
			pts, flags, ok := genMonth(rng, diligence[m])
			if !ok {
				continue
			}
			months.row(m+1, string(per), branchOf(m), int64(pts), int(flags))
			hist[cpDelta{per, committeeOf[branchOf(m)], pts, 0}]++
			rep.MemberMonths++
			if err := months.flush(ctx); err != nil {
				return rep, err
			}
		}
		if m%50000 == 0 {
			progress("member months", m, opt.Members)
		}
	}
	if err := months.done(ctx); err != nil {
		return rep, err
	}
	// The committees' histograms of those months, added to what the entries wrote.
	ds := make([]cpDelta, 0, len(hist))
	for d, n := range hist {
		d.N = n
		ds = append(ds, d)
	}
	for _, st := range committeePointsSQL(db.Driver, ds) {
		if _, err := conn.ExecContext(ctx, st.query, st.args...); err != nil {
			return rep, fmt.Errorf("gen committee points: %w", err)
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// genConn takes a writer connection for bulk inserts; on MySQL it skips unique and
// foreign key checks, which the generator's own ids make safe, until release puts them
// back and returns the connection to the pool.
func genConn(ctx context.Context, db *DB) (*sql.Conn, func(), error) {
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("gen: %w", err)
	}
	if db.Driver != "mysql" {
		return conn, func() { conn.Close() }, nil
	}
	if _, err := conn.ExecContext(ctx, "SET unique_checks = 0, foreign_key_checks = 0"); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("gen: %w", err)
	}
	return conn, func() {
		if _, err := conn.ExecContext(context.Background(), "SET unique_checks = 1, foreign_key_checks = 1"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // not back to the pool like this
		}
		conn.Close()
	}, nil
}

// genMonth draws a member's month: 四个一 duties (2 each), volunteer hours, a pioneer duty,
// the activity day and meetings, each more likely the more diligent the member. Some
// members do nothing in a month (ok false).
func genMonth(rng *rand.Rand, d float64) (models.Points, models.FourOnes, bool) {
	if rng.Float64() > 0.3+0.7*d {
		return 0, 0, false
	}
	var p models.Points
	var flags models.FourOnes
	for i := 0; i < 4; i++ {
		if rng.Float64() < d {
			p += 20
			flags |= 1 << i
		}
	}
	p += models.Points(rng.IntN(int(d*20)+1)) * 5 // up to 10 hours in half hours
	if rng.Float64() < d/3 {
		p += 30
	}
	if rng.Float64() < 0.5+d/2 {
		p += 20
	}
	p += models.Points(rng.IntN(5)) * 10
	return p, flags, true
}

// genEntries writes this month of the first EntryMembers members as ledger entries,
// 10,000 members at a time, and returns how many entries it wrote.
func genEntries(ctx context.Context, db *DB, opt GenOptions, branchOf func(int) int64, loc *time.Location, now time.Time,
	rng *rand.Rand, progress func(string, int, int)) (int, error) {
	rules := map[string]models.Rule{}
	var all []models.Rule
	if err := db.R.WithContext(ctx).Find(&all).Error; err != nil {
		return 0, fmt.Errorf("gen: %w", err)
	}
	for _, r := range all {
		if r.Version > rules[r.Code].Version {
			rules[r.Code] = r
		}
	}
	today := models.Today(now, loc)
	local := now.In(loc)
	total := 0
	for lo := 0; lo < opt.EntryMembers; lo += 10000 {
		b := newBulkLedger()
		for m := lo; m < min(lo+10000, opt.EntryMembers); m++ {
			d := rng.Float64()
			day := func() models.Date {
				return models.Date(time.Date(local.Year(), local.Month(), 1+rng.IntN(local.Day()), 12, 0, 0, 0, loc).Format("2006-01-02"))
			}
			addRule := func(code string, pts models.Points, source string) {
				r := rules[code]
				award, _ := capAward(r, pts, b.ruleTotal(int64(m+1), today.Period(), code))
				if award > 0 {
					b.add(entryInput{MemberID: int64(m + 1), BranchID: branchOf(m), Rule: r, OccurredOn: day(), Points: award, Source: source, Reason: r.Name}, now)
				}
			}
			for _, code := range models.FourOnesRules {
				if rng.Float64() < d {
					addRule(code, 20, models.SourceClaim)
				}
			}
			if h := rng.IntN(int(d*20) + 1); h > 0 {
				addRule("volunteer.hours", models.Points(h)*5, models.SourceClaim)
			}
			if rng.Float64() < 0.5+d/2 {
				addRule("activity.day", 20, models.SourceCheckin)
			}
			for k := rng.IntN(5); k > 0; k-- {
				addRule("meeting.attend", 10, models.SourceCheckin)
			}
		}
		if err := db.W.WithContext(ctx).Transaction(b.write); err != nil {
			return total, fmt.Errorf("gen entries: %w", err)
		}
		total += len(b.entries)
		progress("entries", lo, opt.EntryMembers)
	}
	return total, nil
}

// bulkInsert gathers rows and writes them as multi-row INSERTs on one connection.
type bulkInsert struct {
	conn  *sql.Conn
	table string
	cols  []string
	args  []any
	rows  int
	per   int // rows per statement
	stmt  string
}

func newBulkInsert(conn *sql.Conn, table string, cols ...string) *bulkInsert {
	per := 8000 / len(cols) // well under SQLite's and MySQL's placeholder limits
	return &bulkInsert{conn: conn, table: table, cols: cols, per: per}
}

func (b *bulkInsert) row(vals ...any) {
	b.args = append(b.args, vals...)
	b.rows++
}

// flush writes when a statement's worth of rows has gathered.
func (b *bulkInsert) flush(ctx context.Context) error {
	if b.rows < b.per {
		return nil
	}
	return b.write(ctx)
}

// done writes what is left.
func (b *bulkInsert) done(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	return b.write(ctx)
}

func (b *bulkInsert) write(ctx context.Context) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(b.cols)), ",") + ")"
	q := b.stmt
	if b.rows != b.per || q == "" {
		q = "INSERT INTO " + b.table + " (" + strings.Join(b.cols, ",") + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+",", b.rows), ",")
		if b.rows == b.per {
			b.stmt = q
		}
	}
	if _, err := b.conn.ExecContext(ctx, q, b.args...); err != nil {
		return fmt.Errorf("gen %s: %w", b.table, err)
	}
	b.args, b.rows = b.args[:0], 0
	return nil
}
