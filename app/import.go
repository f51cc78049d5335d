package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"gorm.io/gorm"

	"partyledger/models"
)

// MaxImportRows is the most data rows one roster file may hold.
const MaxImportRows = 10_000

// RosterRow is one data row of a roster file. Row counts the header as row 1, as a
// spreadsheet shows it.
type RosterRow struct {
	Row      int
	MemberNo string
	Name     string
	Branch   string // a branch id, or its name
	Group    string // a group id or name, optional
	Status   string // active/inactive (正常/停用), optional
}

// rosterColumns maps the header names people use (English or Chinese) to fields.
var rosterColumns = map[string]string{
	"member_no": "member_no", "党员编号": "member_no", "编号": "member_no", "学工号": "member_no", "工号": "member_no", "学号": "member_no",
	"name": "name", "姓名": "name",
	"branch": "branch", "branch_id": "branch", "支部": "branch", "党支部": "branch", "所在支部": "branch",
	"group": "group", "group_id": "group", "党小组": "group", "小组": "group",
	"status": "status", "状态": "status",
}

// ParseRoster reads a roster in CSV (UTF-8, with or without BOM, or GB18030 as Excel in
// China saves it) or XLSX (first sheet), recognised by content. Returns EInvalid for a
// file that is neither or lacks a required column, ETooLarge above MaxImportRows.
func ParseRoster(r io.Reader) ([]RosterRow, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse roster: %w", err)
	}
	var records [][]string
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		records, err = readXLSX(data)
	} else {
		records, err = readCSV(data)
	}
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, models.InvalidField("file", "is empty")
	}
	if len(records)-1 > MaxImportRows {
		return nil, models.Errorf(models.ETooLarge, "the file has %d rows; at most %d per import", len(records)-1, MaxImportRows)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if f, ok := rosterColumns[h]; ok {
			if _, dup := col[f]; dup {
				return nil, &models.Error{Code: models.EInvalid, Message: "the header names a column twice", Rows: []models.RowError{{Row: 1, Field: f, Message: "column appears twice"}}}
			}
			col[f] = i
		}
	}
	var missing []models.RowError
	for _, f := range []string{"member_no", "name", "branch"} {
		if _, ok := col[f]; !ok {
			missing = append(missing, models.RowError{Row: 1, Field: f, Message: "missing column " + f + " (" + map[string]string{"member_no": "党员编号", "name": "姓名", "branch": "支部"}[f] + ")"})
		}
	}
	if len(missing) > 0 {
		return nil, &models.Error{Code: models.EInvalid, Message: "the header row lacks required columns", Rows: missing}
	}
	cell := func(rec []string, f string) string {
		i, ok := col[f]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	rows := make([]RosterRow, 0, len(records)-1)
	for i, rec := range records[1:] {
		row := RosterRow{Row: i + 2, MemberNo: cell(rec, "member_no"), Name: cell(rec, "name"), Branch: cell(rec, "branch"), Group: cell(rec, "group"), Status: cell(rec, "status")}
		if row == (RosterRow{Row: row.Row}) {
			continue // a blank line
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func readCSV(data []byte) ([][]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		dec, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			return nil, models.InvalidField("file", "is neither UTF-8 nor GB18030 text, nor an XLSX workbook")
		}
		data = dec
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, models.InvalidField("file", "must be a CSV or XLSX file")
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	var out [][]string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			line := 0
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, &models.Error{Code: models.EInvalid, Message: "the CSV cannot be read", Rows: []models.RowError{{Row: line, Message: "malformed CSV"}}}
		}
		if len(out) > MaxImportRows+1 {
			return nil, models.Errorf(models.ETooLarge, "the file has more than %d rows", MaxImportRows)
		}
		out = append(out, rec)
	}
}

func readXLSX(data []byte) ([][]string, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return nil, models.InvalidField("file", "is not a readable XLSX workbook")
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, models.InvalidField("file", "the workbook has no sheets")
	}
	it, err := f.Rows(sheets[0])
	if err != nil {
		return nil, models.InvalidField("file", "is not a readable XLSX workbook")
	}
	defer it.Close()
	var out [][]string
	for it.Next() {
		rec, err := it.Columns()
		if err != nil {
			return nil, models.InvalidField("file", "is not a readable XLSX workbook")
		}
		if len(out) > MaxImportRows+1 {
			return nil, models.Errorf(models.ETooLarge, "the file has more than %d rows", MaxImportRows)
		}
		out = append(out, rec)
	}
	return out, nil
}

// ImportRowResult says what happened to one row.
type ImportRowResult struct {
	Row      int    `json:"row"`
	MemberNo string `json:"member_no"`
	ID       int64  `json:"id"`
	Result   string `json:"result"` // created, updated or unchanged
}

// ImportResult is the outcome of an import that went through.
type ImportResult struct {
	Created   int               `json:"created"`
	Updated   int               `json:"updated"`
	Unchanged int               `json:"unchanged"`
	Rows      []ImportRowResult `json:"rows"`
}

type orgRef struct {
	org  models.Org
	dups int
}

// Import creates or updates the members of a roster, all or nothing: if any row is bad,
// the returned EInvalid names every bad row and nothing is written. Members are matched
// by member number; both their old and new branch must be in the actor's admin scope.
// progress, if set, is called as rows are written.
//
// A member the roster creates may be created meanwhile by another request (an import of
// the same file sent twice, a POST /members): the roster is then read against the members
// as they are and written again, so that it updates them instead. A member it updates is
// taken for update and written from as it is then (see relock). A transaction MySQL
// aborts (a deadlock between two such imports) is run again too. Each run again comes
// after a short random pause, so that imports that met do not meet again in step; every
// one of them needs another request to have created (or moved) a member or a group of
// the roster, so they stop. EConflict if they keep happening five times, 503 for a fifth
// deadlock.
func (s *Members) Import(ctx context.Context, a *Actor, rows []RosterRow, progress func(done, total int)) (ImportResult, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		res, err := s.importOnce(ctx, a, rows, progress)
		switch {
		case err == nil || ctx.Err() != nil:
			return res, err
		case attempt == attempts && errors.Is(err, errCreatedMeanwhile):
			return ImportResult{}, models.Errorf(models.EConflict, "members of this roster keep being created by other requests; nothing was imported, import again shortly")
		case attempt == attempts || !(errors.Is(err, errCreatedMeanwhile) || isRetryable(err)):
			return res, err
		}
		select {
		case <-ctx.Done():
			return ImportResult{}, ctx.Err()
		case <-time.After(rand.N(time.Duration(attempt) * 10 * time.Millisecond)):
		}
	}
}

// errCreatedMeanwhile: a member the import was creating exists now (or one it read has
// gone out of the actor's scope since, or a group it names has moved).
var errCreatedMeanwhile = errors.New("a member of the roster was created or moved meanwhile")

func (s *Members) importOnce(ctx context.Context, a *Actor, rows []RosterRow, progress func(done, total int)) (ImportResult, error) {
	scopes := a.Scopes(models.RoleAdmin)
	if len(scopes) == 0 {
		return ImportResult{}, models.Errorf(models.EForbidden, "only admins import the roster")
	}
	if len(rows) == 0 {
		return ImportResult{}, models.InvalidField("file", "has no data rows")
	}
	if len(rows) > MaxImportRows {
		return ImportResult{}, models.Errorf(models.ETooLarge, "at most %d rows per import", MaxImportRows)
	}
	// The orgs in scope, by id and by name (names may repeat across the tree).
	var orgs []models.Org
	if err := s.db.R.WithContext(ctx).Where(scopeClause("path", scopes)).Where("kind IN ?", []models.OrgKind{models.KindBranch, models.KindGroup}).Find(&orgs).Error; err != nil {
		return ImportResult{}, dbError("import", err)
	}
	byID := map[int64]models.Org{}
	byName := map[string]*orgRef{}
	for _, o := range orgs {
		byID[o.ID] = o
		key := string(o.Kind) + "\x00" + o.Name
		if r, ok := byName[key]; ok {
			r.dups++
		} else {
			byName[key] = &orgRef{org: o}
		}
	}
	resolve := func(v string, kind models.OrgKind) (models.Org, string) {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			if o, ok := byID[id]; ok && o.Kind == kind {
				return o, ""
			}
			return models.Org{}, "no " + string(kind) + " with id " + v + " in your scope"
		}
		r, ok := byName[string(kind)+"\x00"+v]
		if !ok {
			return models.Org{}, "no " + string(kind) + " named " + strconv.Quote(v) + " in your scope"
		}
		if r.dups > 0 {
			return models.Org{}, "several " + string(kind) + "es are named " + strconv.Quote(v) + "; use the id"
		}
		return r.org, ""
	}

	// Existing members with these numbers.
	nos := make([]string, 0, len(rows))
	for _, r := range rows {
		nos = append(nos, r.MemberNo)
	}
	existing := map[string]memberRow{} // by memberNoKey
	for start := 0; start < len(nos); start += 500 {
		var found []memberRow
		err := s.db.R.WithContext(ctx).Table("members").Select("members.*, orgs.path AS branch_path").
			Joins("JOIN orgs ON orgs.id = members.branch_id").Where(s.db.memberNoIn("members.member_no"), nos[start:min(start+500, len(nos))]).Find(&found).Error
		if err != nil {
			return ImportResult{}, dbError("import", err)
		}
		for _, m := range found {
			existing[memberNoKey(m.MemberNo)] = m
		}
	}

	var bad []models.RowError
	firstRow := map[string]int{}
	type plan struct {
		row    RosterRow
		member models.Member
		old    *memberRow
	}
	plans := make([]plan, 0, len(rows))
	for _, r := range rows {
		fail := func(field, msg string) { bad = append(bad, models.RowError{Row: r.Row, Field: field, Message: msg}) }
		n0 := len(bad)
		if r.MemberNo == "" {
			fail("member_no", "is required")
		} else if !memberNoRe.MatchString(r.MemberNo) {
			fail("member_no", "must be 1 to 32 letters, digits, '_' or '-'")
		} else if first, dup := firstRow[memberNoKey(r.MemberNo)]; dup {
			fail("member_no", fmt.Sprintf("duplicates row %d", first))
		} else {
			firstRow[memberNoKey(r.MemberNo)] = r.Row
		}
		if r.Name == "" {
			fail("name", "is required")
		} else if utf8.RuneCountInString(r.Name) > 64 {
			fail("name", "must have at most 64 characters")
		}
		var branch, group models.Org
		var msg string
		if r.Branch == "" {
			fail("branch", "is required")
		} else if branch, msg = resolve(r.Branch, models.KindBranch); msg != "" {
			fail("branch", msg)
		}
		var groupID *int64
		if r.Group != "" && branch.ID != 0 {
			if group, msg = resolve(r.Group, models.KindGroup); msg != "" {
				fail("group", msg)
			} else if group.ParentID == nil || *group.ParentID != branch.ID {
				fail("group", "is not a group of branch "+branch.Name)
			} else {
				groupID = &group.ID
			}
		}
		status := models.StatusActive
		switch strings.ToLower(r.Status) {
		case "", "active", "正常", "在册":
		case "inactive", "停用", "disabled":
			status = models.StatusInactive
		default:
			fail("status", "must be active (正常) or inactive (停用)")
		}
		var old *memberRow
		if m, ok := existing[memberNoKey(r.MemberNo)]; ok {
			if !a.Can(models.RoleAdmin, m.BranchPath) {
				fail("member_no", "belongs to a member outside your scope")
			}
			old = &m
		}
		if len(bad) > n0 {
			continue
		}
		plans = append(plans, plan{row: r, old: old, member: models.Member{MemberNo: r.MemberNo, Name: r.Name, BranchID: branch.ID, GroupID: groupID, Status: status}})
	}
	if len(bad) > 0 {
		return ImportResult{}, &models.Error{Code: models.EInvalid, Message: fmt.Sprintf("%d problems in the file; nothing was imported", len(bad)), Rows: bad}
	}

	res := ImportResult{Rows: make([]ImportRowResult, len(plans))}
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var read []*models.Member
		for _, p := range plans {
			if p.old != nil {
				read = append(read, &p.old.Member)
			}
		}
		if err := relock(tx, read); err != nil {
			return err
		}
		for _, m := range read {
			if _, ok := byID[m.BranchID]; !ok { // moved out of the actor's scope meanwhile
				return errCreatedMeanwhile // planned again, the row is refused
			}
		}
		// The groups the roster puts members in, locked as placeMember locks them: one
		// moved to another branch since the plan read it sends the import round again.
		groups := map[int64]int64{} // group id: the branch the plan found it in
		for _, p := range plans {
			if p.member.GroupID != nil {
				groups[*p.member.GroupID] = p.member.BranchID
			}
		}
		if len(groups) > 0 {
			locked, err := lockOrgs(tx.Statement.Context, tx, slices.Collect(maps.Keys(groups))...)
			if err != nil {
				return err
			}
			for id, branch := range groups {
				if g, ok := locked[id]; !ok || g.ParentID == nil || *g.ParentID != branch {
					return errCreatedMeanwhile
				}
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		var creates []*models.Member
		var createIdx []int
		var audits []models.AuditRecord
		var disabled []int64
		for i, p := range plans {
			res.Rows[i] = ImportRowResult{Row: p.row.Row, MemberNo: p.member.MemberNo}
			if p.old == nil {
				m := p.member
				m.CreatedAt, m.UpdatedAt = now, now
				creates = append(creates, &m)
				createIdx = append(createIdx, i)
				continue
			}
			o := p.old.Member
			res.Rows[i].ID = o.ID
			if o.Name == p.member.Name && o.BranchID == p.member.BranchID && eqID(o.GroupID, p.member.GroupID) && o.Status == p.member.Status {
				res.Rows[i].Result = "unchanged"
				res.Unchanged++
				continue
			}
			changes := map[string]any{"name": p.member.Name, "branch_id": p.member.BranchID, "group_id": p.member.GroupID, "status": p.member.Status,
				"updated_at": now, "auth_rev": gorm.Expr("auth_rev + 1")}
			if err := tx.Model(&models.Member{}).Where("id = ?", o.ID).Updates(changes).Error; err != nil {
				return dbError("import", err)
			}
			if p.member.Status != models.StatusActive {
				disabled = append(disabled, o.ID)
			}
			after := o
			after.Name, after.BranchID, after.GroupID, after.Status, after.UpdatedAt = p.member.Name, p.member.BranchID, p.member.GroupID, p.member.Status, now
			rec, err := auditRecord(&a.ID, &after.BranchID, "member.imported", "member", o.ID, o, after)
			if err != nil {
				return err
			}
			audits = append(audits, rec)
			res.Rows[i].Result = "updated"
			res.Updated++
			if progress != nil && res.Updated%200 == 0 {
				progress(res.Updated, len(plans))
			}
		}
		for start := 0; start < len(creates); start += 500 {
			batch := creates[start:min(start+500, len(creates))]
			if err := tx.Create(batch).Error; err != nil {
				if isDuplicate(err) {
					return errCreatedMeanwhile
				}
				return dbError("import", err)
			}
			for j, m := range batch {
				i := createIdx[start+j]
				res.Rows[i].ID, res.Rows[i].Result = m.ID, "created"
				rec, err := auditRecord(&a.ID, &m.BranchID, "member.imported", "member", m.ID, nil, m)
				if err != nil {
					return err
				}
				audits = append(audits, rec)
			}
			res.Created += len(batch)
			if progress != nil {
				progress(res.Updated+res.Created, len(plans))
			}
		}
		if err := endSessions(tx, disabled, now); err != nil {
			return err
		}
		if len(audits) > 0 {
			if err := tx.CreateInBatches(audits, 500).Error; err != nil {
				return dbError("import", err)
			}
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, err
	}
	if progress != nil {
		progress(len(plans), len(plans))
	}
	return res, nil
}

// relock takes the rows of the members an import read for update, in id order, and
// puts each as it is now in place of what was read: imports and PATCHes that meet on a
// member run one after the other, each planning and auditing from what the one before
// it left. (The first read locks nothing so that it meets inserts of the members the
// import creates only at its own insert: a locking read of those numbers deadlocked
// with the imports and POSTs creating them.) errCreatedMeanwhile if one is gone.
func relock(tx *gorm.DB, members []*models.Member) error {
	read := map[int64]*models.Member{}
	ids := make([]int64, 0, len(members))
	for _, m := range members {
		read[m.ID] = m
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += 500 {
		var now []models.Member
		if err := forUpdate(tx).Where("id IN ?", ids[start:min(start+500, len(ids))]).Order("id").Find(&now).Error; err != nil {
			return dbError("import", err)
		}
		if len(now) != min(start+500, len(ids))-start {
			return errCreatedMeanwhile
		}
		for _, m := range now {
			*read[m.ID] = m
		}
	}
	return nil
}

func eqID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
