package app

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"partyledger/models"
)

// TestHiddenKeepsOutagesApart: a lookup the actor may not see and a row that is not
// there both answer "not found", but a database that stopped answering must stay an
// outage (503), never turn into "no such thing".
func TestHiddenKeepsOutagesApart(t *testing.T) {
	nf := models.Errorf(models.ENotFound, "no such claim")
	for _, c := range []struct {
		name    string
		err     error
		visible bool
		want    error
	}{
		{"visible", nil, true, nil},
		{"not the actor's", nil, false, nf},
		{"no row (gorm)", fmt.Errorf("get: %w", gorm.ErrRecordNotFound), false, nf},
		{"no row (domain)", models.Errorf(models.ENotFound, "no such org"), false, nf},
		{"deadline", dbError("get claim", context.DeadlineExceeded), false, nil},
		{"broken connection", driver.ErrBadConn, false, nil},
	} {
		got := hidden(c.err, c.visible, nf)
		if c.want == nil && c.err != nil {
			if got != c.err || !IsUnavailable(got) {
				t.Errorf("%s: %v, want the error itself", c.name, got)
			}
			continue
		}
		if !errors.Is(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
