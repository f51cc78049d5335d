package app_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"partyledger/app"
	"partyledger/models"
)

// FuzzParseRoster: any file, CSV or XLSX, gives rows or an error a person can read (a
// *models.Error naming what is wrong), never a panic and never an internal error, and
// never more rows than an import takes.
func FuzzParseRoster(f *testing.F) {
	csv := "党员编号,姓名,支部,党小组\nA001,王小丽,教工第一党支部,第一党小组\nA002,李明,12,\n"
	gb, _ := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(csv))
	x := excelize.NewFile()
	x.SetSheetRow("Sheet1", "A1", &[]any{"member_no", "name", "branch"})
	x.SetSheetRow("Sheet1", "A2", &[]any{"A001", "王小丽", 3})
	xb, _ := x.WriteToBuffer()
	for _, seed := range [][]byte{[]byte(csv), append([]byte("\ufeff"), csv...), gb, xb.Bytes(), []byte("PK\x03\x04garbage"),
		[]byte("member_no,name\nA1,x\n"), []byte("member_no,name,branch\n\"A1,x\n"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := app.ParseRoster(bytes.NewReader(data))
		if err != nil {
			var me *models.Error
			if !errors.As(err, &me) || me.Code == models.EInternal {
				t.Fatalf("not an error a person can read: %v", err)
			}
			return
		}
		// Rows are checked one by one later, with their row numbers; parsing promises
		// the bound.
		if len(rows) > app.MaxImportRows {
			t.Fatalf("%d rows passed the bound of %d", len(rows), app.MaxImportRows)
		}
	})
}
