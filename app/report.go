package app

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"

	"partyledger/models"
)

// Report is a monthly report of an org subtree, checked and counted, ready to stream.
type Report struct {
	g      *Aggregates
	org    models.Org
	scope  scope
	period models.Period
	Format string // "xlsx" or "csv"
	Sheet  string // for csv, which sheet: "members" or "branches"
	Rows   int64  // member rows
}

// ReportFormats are the media types of the report formats.
var ReportFormats = map[string]string{
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"csv":  "text/csv; charset=utf-8",
}

// FileName is the report's download name (ASCII, for Content-Disposition).
func (r *Report) FileName() string {
	if r.Format == "csv" {
		return fmt.Sprintf("report-%d-%s-%s.csv", r.org.ID, r.period, r.Sheet)
	}
	return fmt.Sprintf("report-%d-%s.%s", r.org.ID, r.period, r.Format)
}

// PrepareReport checks a monthly report for an org subtree: leaders and admins over the
// org may have it, as xlsx or csv, when it has no more member rows than the configured
// cap. A csv file holds one sheet: "members" (the default) or "branches". Returns
// EInvalid or ENotFound.
func (g *Aggregates) PrepareReport(ctx context.Context, a *Actor, orgID int64, period, format, sheet string) (*Report, error) {
	per, err := g.period(period)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = "xlsx"
	}
	if _, ok := ReportFormats[format]; !ok {
		return nil, models.InvalidField("format", "must be xlsx or csv")
	}
	switch {
	case sheet == "" && format == "csv":
		sheet = "members"
	case sheet != "" && format != "csv":
		return nil, models.InvalidField("sheet", "is for csv; an xlsx file holds both sheets")
	case sheet != "" && sheet != "members" && sheet != "branches":
		return nil, models.InvalidField("sheet", "must be members or branches")
	}
	o, err := g.org(ctx, a, orgID)
	if err := hidden(err, err == nil && a.CanAny(o.Path, models.RoleLeader, models.RoleAdmin), errOrgNotFound); err != nil {
		return nil, err
	}
	r := &Report{g: g, org: o, scope: scopeOf(o), period: per, Format: format, Sheet: sheet}
	// The rows are the scope's member_months rows plus its active members with none;
	// the second count reads every member of the scope, so it is asked only when the
	// first two cannot settle the cap.
	db := g.db.R.WithContext(ctx)
	where, args := r.scope.rowsWhere(per, nil)
	var rows, active int64
	if err := db.Raw("SELECT COUNT(*) FROM member_months mm JOIN members m ON m.id = mm.member_id WHERE "+where, args...).Scan(&rows).Error; err != nil {
		return nil, dbError("report", err)
	}
	awhere, aargs := and(r.scope.rcond, r.scope.rargs, []string{"m.status = 'active'"})
	if err := db.Raw("SELECT COUNT(*) FROM members m WHERE "+awhere, aargs...).Scan(&active).Error; err != nil {
		return nil, dbError("report", err)
	}
	// rows ≤ the report's rows ≤ rows + active.
	limit := int64(g.maxReport)
	if total := rows; rows <= limit && rows+active > limit {
		zwhere, zargs := r.scope.noRowWhere(per, nil)
		var zero int64
		if err := db.Raw("SELECT COUNT(*) FROM members m WHERE "+zwhere, zargs...).Scan(&zero).Error; err != nil {
			return nil, dbError("report", err)
		}
		if total += zero; total > limit {
			return nil, models.InvalidField("org_id", fmt.Sprintf("the report would have %d rows, more than the limit of %d; ask for a smaller org", total, limit))
		}
	} else if rows > limit {
		return nil, models.InvalidField("org_id", fmt.Sprintf("the report would have at least %d rows, more than the limit of %d; ask for a smaller org", rows, limit))
	}
	return r, nil
}

// reportRow is a member's line of the report.
type reportRow struct {
	MemberID   int64
	MemberNo   string
	Name       string
	Branch     string
	Points     models.Points
	FourOnes   models.FourOnes
	Categories [5]models.Points // in the order of Categories
	Year       models.Points
	Rank       int64
}

var memberHeader = []string{"排名", "党员编号", "姓名", "支部", "本月积分", "四个一", "志愿服务", "先锋岗", "活动", "奖惩",
	"听取群众意见", "掌握积极分子", "阅读理论书籍", "参加志愿活动", "四个一完成", "年度累计", "星级"}
var branchHeader = []string{"排名", "支部", "党员数", "总积分", "人均积分", "四个一完成率", "参与率"}

// memberStream yields the report's member rows in rank order: the rows of member_months
// merged with the members who earned nothing (at zero), both read as streams, so memory
// stays flat however many rows there are.
func (r *Report) memberStream(ctx context.Context, emit func(reportRow) error) error {
	db := r.g.db.R.WithContext(ctx)
	first, last := models.Period(string(r.period[:4])+"-01"), r.period
	year := "(SELECT COALESCE(SUM(y.points), 0) FROM member_months y WHERE y.member_id = m.id AND y.period >= ? AND y.period <= ?)"
	var cats strings.Builder
	for _, c := range Categories {
		fmt.Fprintf(&cats, ", COALESCE((SELECT SUM(mt.points) FROM member_totals mt WHERE mt.member_id = mm.member_id AND mt.period = mm.period AND mt.branch_id = mm.branch_id AND mt.category = '%s'), 0)", c)
	}
	where, args := r.scope.rowsWhere(r.period, nil)
	rows, err := db.Raw(`SELECT mm.member_id, m.member_no, m.name, b.name, mm.points, mm.four_ones`+cats.String()+`, `+year+`
FROM member_months mm JOIN members m ON m.id = mm.member_id JOIN orgs b ON b.id = mm.branch_id
WHERE `+where+` ORDER BY mm.points DESC, mm.member_id DESC`, append([]any{first, last}, args...)...).Rows()
	if err != nil {
		return dbError("report", err)
	}
	defer rows.Close()
	zwhere, zargs := r.scope.noRowWhere(r.period, nil)
	zrows, err := db.Raw(`SELECT m.id, m.member_no, m.name, b.name, `+year+` FROM members m JOIN orgs b ON b.id = m.branch_id
WHERE `+zwhere+` ORDER BY m.id DESC`, append([]any{first, last}, zargs...)...).Rows()
	if err != nil {
		return dbError("report", err)
	}
	defer zrows.Close()
	next := func() (*reportRow, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		var x reportRow
		dst := []any{&x.MemberID, &x.MemberNo, &x.Name, &x.Branch, &x.Points, &x.FourOnes}
		for i := range x.Categories {
			dst = append(dst, &x.Categories[i])
		}
		return &x, rows.Scan(append(dst, &x.Year)...)
	}
	nextZero := func() (*reportRow, error) {
		if !zrows.Next() {
			return nil, zrows.Err()
		}
		var x reportRow
		return &x, zrows.Scan(&x.MemberID, &x.MemberNo, &x.Name, &x.Branch, &x.Year)
	}
	a, err := next()
	if err != nil {
		return dbError("report", err)
	}
	z, err := nextZero()
	if err != nil {
		return dbError("report", err)
	}
	var n int64
	var prev *reportRow
	for a != nil || z != nil {
		var cur *reportRow
		if z == nil || (a != nil && (a.Points > 0 || (a.Points == 0 && a.MemberID > z.MemberID))) {
			cur = a
			if a, err = next(); err != nil {
				return dbError("report", err)
			}
		} else {
			cur = z
			if z, err = nextZero(); err != nil {
				return dbError("report", err)
			}
		}
		n++
		r.Rows = n
		cur.Rank = n
		if prev != nil && prev.Points == cur.Points {
			cur.Rank = prev.Rank
		}
		if err := emit(*cur); err != nil {
			return err
		}
		prev = cur
	}
	return nil
}

func (r *Report) memberCells(x reportRow) []any {
	yes := func(b bool) string {
		if b {
			return "是"
		}
		return "否"
	}
	cells := []any{x.Rank, x.MemberNo, x.Name, x.Branch, x.Points.Float()}
	for _, c := range x.Categories {
		cells = append(cells, c.Float())
	}
	for i := range models.FourOnesRules {
		cells = append(cells, yes(x.FourOnes&(1<<i) != 0))
	}
	return append(cells, yes(x.FourOnes.Complete()), x.Year.Float(), r.g.Stars(x.Year))
}

// branches is the report's second sheet: the branches inside the org, ranked by average.
func (r *Report) branches(ctx context.Context) ([]BranchRow, error) {
	if r.org.Kind == models.KindGroup {
		return nil, nil
	}
	sub, args := subtreeBranches(r.org)
	rows, err := r.g.branchRows(ctx, r.period, sub, args...)
	if err != nil {
		return nil, err
	}
	rankBranches(rows, "average")
	return rows, nil
}

func branchCells(b BranchRow) []any {
	return []any{b.Rank, b.Name, b.Members, b.Total.Float(), b.Average.Float(), b.CompletionRate, b.ParticipationRate}
}

// WriteTo streams the report to w.
func (r *Report) WriteTo(ctx context.Context, w io.Writer) error {
	if r.Format == "csv" {
		return r.writeCSV(ctx, w)
	}
	return r.writeXLSX(ctx, w)
}

// csvSafe keeps a spreadsheet from running a text cell as a formula: text that starts
// with = + - @ or a tab or carriage return is prefixed with an apostrophe.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvCells(cells []any) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		switch v := c.(type) {
		case string:
			out[i] = csvSafe(v)
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// writeCSV writes one sheet in UTF-8 with a byte order mark, so that Excel reads the
// Chinese right.
func (r *Report) writeCSV(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("\ufeff")
	cw := csv.NewWriter(bw)
	if r.Sheet == "branches" {
		bs, err := r.branches(ctx)
		if err != nil {
			return err
		}
		cw.Write(branchHeader)
		for _, b := range bs {
			cw.Write(csvCells(branchCells(b)))
		}
	} else {
		cw.Write(memberHeader)
		if err := r.memberStream(ctx, func(x reportRow) error { return cw.Write(csvCells(r.memberCells(x))) }); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// writeXLSX writes two sheets through excelize's stream writer, which keeps rows on disk
// past a small buffer rather than in memory.
func (r *Report) writeXLSX(ctx context.Context, w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"F2DEDE"}}})
	if err != nil {
		return err
	}
	// Both sheets exist before either is streamed: touching the workbook's sheets after
	// (deleting the default one, say) makes excelize parse the streamed XML back into
	// memory, which would grow with the rows.
	bs, err := r.branches(ctx)
	if err != nil {
		return err
	}
	if err := f.SetSheetName("Sheet1", "党员积分"); err != nil {
		return err
	}
	if bs != nil {
		if _, err := f.NewSheet("支部汇总"); err != nil {
			return err
		}
	}
	sheet := func(name string, header []string, widths []float64) (*excelize.StreamWriter, error) {
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return nil, err
		}
		for i, wd := range widths {
			if err := sw.SetColWidth(i+1, i+1, wd); err != nil {
				return nil, err
			}
		}
		if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return nil, err
		}
		cells := make([]any, len(header))
		for i, h := range header {
			cells[i] = excelize.Cell{StyleID: bold, Value: h}
		}
		return sw, sw.SetRow("A1", cells)
	}
	members, err := sheet("党员积分", memberHeader, []float64{6, 12, 10, 22, 9, 8, 9, 8, 8, 8, 12, 12, 12, 12, 10, 9, 6})
	if err != nil {
		return err
	}
	row := 1
	if err := r.memberStream(ctx, func(x reportRow) error {
		row++
		cell, _ := excelize.CoordinatesToCellName(1, row)
		return members.SetRow(cell, r.memberCells(x))
	}); err != nil {
		return err
	}
	if err := members.Flush(); err != nil {
		return err
	}
	if bs != nil {
		branches, err := sheet("支部汇总", branchHeader, []float64{6, 24, 8, 10, 10, 12, 10})
		if err != nil {
			return err
		}
		for i, b := range bs {
			cell, _ := excelize.CoordinatesToCellName(1, i+2)
			if err := branches.SetRow(cell, branchCells(b)); err != nil {
				return err
			}
		}
		if err := branches.Flush(); err != nil {
			return err
		}
	}
	// The zip goes straight to w: File.Write would build the whole file in memory first.
	// (WriteToBuffer's own buffer stays empty; it would only be rewritten for ZIP64
	// parts, over 4 GB, which the row cap rules out.)
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(w) })
	_, err = f.WriteToBuffer()
	return err
}
