package models

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Points are ledger points in integer tenths: 25 is 2.5 points. They are never floats.
// In JSON they are numbers with at most one decimal.
type Points int64

// ErrPointsFormat is returned for a number with more than one decimal, an exponent or
// a magnitude beyond the ledger's range.
var ErrPointsFormat = errors.New("must be a number with at most one decimal, such as 2 or 0.5")

// maxPoints bounds any single amount (a million points), far above any real entry.
const maxPoints = 10_000_000

// ParsePoints reads a decimal such as "2", "-1.5" or "0.5" exactly.
func ParsePoints(s string) (Points, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(digits, ".")
	if whole == "" || len(whole) > 7 || (hasFrac && (len(frac) != 1 && !(len(frac) == 2 && frac[1] == '0') || frac == "")) {
		return 0, ErrPointsFormat
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, ErrPointsFormat
		}
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, ErrPointsFormat
	}
	n *= 10
	if hasFrac {
		n += int64(frac[0] - '0')
	}
	if n > maxPoints {
		return 0, ErrPointsFormat
	}
	if neg {
		n = -n
	}
	return Points(n), nil
}

// Float is p as a number of points, for spreadsheets; never compute with it.
func (p Points) Float() float64 { return float64(p) / 10 }

// String formats p as a decimal with at most one decimal: "2", "-1.5".
func (p Points) String() string {
	n := int64(p)
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	if n%10 == 0 {
		return sign + strconv.FormatInt(n/10, 10)
	}
	return sign + strconv.FormatInt(n/10, 10) + "." + strconv.FormatInt(n%10, 10)
}

// MarshalJSON writes p as a JSON number.
func (p Points) MarshalJSON() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalJSON reads a JSON number with at most one decimal. Its error is a
// *json.UnmarshalTypeError, so the decoder names the field.
func (p *Points) UnmarshalJSON(b []byte) error {
	v, err := ParsePoints(string(b))
	if err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Points]()}
	}
	*p = v
	return nil
}

// Period is a month, "YYYY-MM", in the service's time zone.
type Period string

// LedgerYear reports whether y is one of the years the ledger keeps, 2000 to 2100: those
// of its months, days and activities.
func LedgerYear(y int) bool { return y >= 2000 && y <= 2100 }

// ParsePeriod checks "YYYY-MM".
func ParsePeriod(s string) (Period, error) {
	if len(s) != 7 {
		return "", errors.New("must be a month as YYYY-MM")
	}
	t, err := time.Parse("2006-01", s)
	if err != nil || !LedgerYear(t.Year()) {
		return "", errors.New("must be a month as YYYY-MM")
	}
	return Period(s), nil
}

// PeriodOf is the month of an instant in loc.
func PeriodOf(t time.Time, loc *time.Location) Period {
	return Period(t.In(loc).Format("2006-01"))
}

// Date is a calendar day, "YYYY-MM-DD", as a member says a duty happened.
type Date string

// ParseDate checks "YYYY-MM-DD" is a real day.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil || t.Format("2006-01-02") != s || !LedgerYear(t.Year()) {
		return "", errors.New("must be a real date as YYYY-MM-DD")
	}
	return Date(s), nil
}

// Period is the month the day lies in.
func (d Date) Period() Period { return Period(string(d)[:7]) }

// Today is the current calendar day in loc.
func Today(now time.Time, loc *time.Location) Date { return Date(now.In(loc).Format("2006-01-02")) }
