package app

import (
	"encoding/base64"
	"strconv"
	"strings"

	"partyledger/models"
)

// Page asks for one page of a list ordered by id: at most Limit items after the id in
// the cursor.
type Page struct {
	Limit int
	After int64
}

// Page limits.
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// ParsePage reads the limit and cursor query parameters ("" means absent). A limit over
// the maximum is clamped. Returns EInvalid.
func ParsePage(limit, cursor string) (Page, error) {
	p := Page{Limit: DefaultPageLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 {
			return p, models.InvalidField("limit", "must be a whole number from 1 to 100")
		}
		p.Limit = min(n, MaxPageLimit)
	}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		id, perr := int64(0), error(nil)
		if err == nil && strings.HasPrefix(string(raw), "id:") {
			id, perr = strconv.ParseInt(string(raw[3:]), 10, 64)
		}
		if err != nil || !strings.HasPrefix(string(raw), "id:") || perr != nil || id < 0 {
			return p, models.InvalidField("cursor", "is not a cursor this server gave out")
		}
		p.After = id
	}
	return p, nil
}

// List is one page of items and the cursor of the next page (nil at the end).
type List[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf cuts rows, fetched with limit+1, to a page and its next cursor.
func pageOf[T any](rows []T, limit int, id func(T) int64) List[T] {
	out := List[T]{Items: rows}
	if out.Items == nil {
		out.Items = []T{}
	}
	if len(rows) > limit {
		out.Items = rows[:limit]
		c := base64.RawURLEncoding.EncodeToString([]byte("id:" + strconv.FormatInt(id(rows[limit-1]), 10)))
		out.NextCursor = &c
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
